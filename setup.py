"""tfx-image-finetune: a TFX pipeline that fine-tunes a pretrained Keras image model for TF Serving.

Exact versions live in requirements.lock (the install uses it); these are the direct requirements.
"""

from setuptools import setup

setup(
    name="tfx-image-finetune",
    version="0.1.0",
    description="TFX pipeline: fine-tune a pretrained Keras image model and push it to TF Serving",
    python_requires=">=3.10,<3.11",
    packages=[
        "pipeline",
        "components",
        "components.evaluator",
        "components.image_folder_example_gen",
        "components.validation_gate",
        "components.hyperparameters",
        "components.pusher",
        "components.tfrecord_example_gen",
        "trainer",
        "kubeflow",
        "schema",
    ],
    package_data={"schema": ["*.pbtxt"]},
    install_requires=[
        "tfx[kfp]==1.16.0",
        "dill",  # apache-beam 2.74 no longer pulls it in; TFT 1.16 imports it
        "pillow",
        "matplotlib",  # the run report's plots (Agg backend)
    ],
    extras_require={"test": ["pytest"]},
    entry_points={"console_scripts": ["tfx-image-finetune=pipeline.cli:main"]},
)
