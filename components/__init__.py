"""Custom TFX components (component / executor split, as TFX's own)."""


def __getattr__(name):
    """`components.ImageIngestReport`: the custom artifact's TYPE_NAME is also its import path.

    KFP v2 wants a custom type's schema title as `<namespace>.<Name>`, and TFX's container entrypoint imports
    that title as `<module>.<Class>` to rebuild the artifact; imported lazily, so `components` stays light.
    """
    if name == "ImageIngestReport":
        from components.image_folder_example_gen.component import ImageIngestReport

        return ImageIngestReport
    raise AttributeError(f"module 'components' has no attribute {name!r}")
