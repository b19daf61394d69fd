"""tfx-image-finetune: the one installed import name of this project.

Folders by concern, imports one way (tests/test_structure.py), top to bottom:
`cli` (the command line) -> `local` (the local runner: supervisor, lock, console) and `kubeflow` (the cloud
runner) -> `report` (what a run did: closing lines, report.html) and `serving` (the predict client) ->
`pipeline` (create_pipeline, data layout, Beam args) -> `components` and `trainer` -> this package's own
modules: `config` (typed configuration), `serving_contract`, `image_header`, `metadata_store` (no TensorFlow).
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
