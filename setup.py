"""tfx-image-finetune: a TFX pipeline that fine-tunes a pretrained Keras image model for TF Serving.

Exact versions live in requirements.lock (the install uses it); these are the direct requirements.
Everything installs under the one import name `tfx_image_finetune`: the repository's folders (cli/, local/,
kubeflow/, report/, serving/, pipeline/, components/, trainer/, schema/) are mapped below it, so nothing
collides with `kubeflow.*` (the Kubeflow SDKs' namespace), PyPI's `schema`, or other generic names.
"""

import os

from setuptools import find_packages, setup

NAME = "tfx_image_finetune"
FOLDERS = ["cli", "local", "kubeflow", "report", "serving", "pipeline", "components", "trainer", "schema"]
# Every package inside those folders (components/<component>/, ...), found rather than listed: a new component's
# folder cannot be left out of the wheel and the pipeline image.
HERE = os.path.dirname(os.path.abspath(__file__))
SUBPACKAGES = [f"{folder}.{sub}" for folder in FOLDERS for sub in find_packages(os.path.join(HERE, folder))]

setup(
    name="tfx-image-finetune",
    version="0.1.0",
    description="TFX pipeline: fine-tune a pretrained Keras image model and push it to TF Serving",
    python_requires=">=3.10,<3.11",
    packages=[NAME] + [f"{NAME}.{p}" for p in FOLDERS + SUBPACKAGES],
    package_dir={NAME: NAME, **{f"{NAME}.{folder}": folder for folder in FOLDERS}},
    package_data={f"{NAME}.schema": ["*.pbtxt"], f"{NAME}.local": ["quiet_shutdown/sitecustomize.py"]},
    install_requires=[
        "tfx[kfp]==1.16.0",
        "dill",  # apache-beam 2.74 no longer pulls it in; TFT 1.16 imports it
        "pillow",
        "matplotlib",  # the run report's plots (Agg backend)
        "tflite-support==0.4.4",  # --tflite: the model's metadata (labels, normalization)
        "libusb-package",  # libusb-1.0, which tflite-support's compiled modules link (trainer/tflite.py)
    ],
    extras_require={"test": ["pytest"]},
    entry_points={"console_scripts": ["tfx-image-finetune=tfx_image_finetune.cli.main:main"]},
)
