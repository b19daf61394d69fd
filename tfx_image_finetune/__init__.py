"""tfx-image-finetune: the one installed import name of this project.

`config` (typed configuration, no TensorFlow) and `serving_contract` (names shared with TF Serving clients) sit at
the bottom; `trainer`, `components` build on them; `pipeline` (definition, local runner, CLI) and `kubeflow`
(cloud runner) sit at the top.
"""


def __getattr__(name):
    """`tfx_image_finetune.ImageIngestReport`: the custom artifact's TYPE_NAME is also its import path.

    KFP v2 wants a custom type's schema title as `<namespace>.<Name>`, and TFX's container entrypoint imports
    that title as `<module>.<Class>` to rebuild the artifact; imported lazily, so this package stays light.
    """
    if name == "ImageIngestReport":
        from tfx_image_finetune.components.image_folder_example_gen.component import ImageIngestReport

        return ImageIngestReport
    raise AttributeError(f"module 'tfx_image_finetune' has no attribute {name!r}")
