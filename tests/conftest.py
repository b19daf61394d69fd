"""Shared fixtures. Real data and weights come from ../shared (override: TFX_IMAGE_FINETUNE_SHARED)."""

from __future__ import annotations

import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("TFX_IMAGE_FINETUNE_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
CATS_DOGS = os.path.join(SHARED, "data", "cats_and_dogs_filtered")
MOBILENET_WEIGHTS = os.environ.get(
    "TFX_IMAGE_FINETUNE_WEIGHTS",
    os.path.join(SHARED, "weights", "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"),
)


@pytest.fixture(scope="session")
def demo_images(tmp_path_factory):
    from pipeline import demo_data

    root = str(tmp_path_factory.mktemp("demo_images"))
    demo_data.generate(root, per_class=60)
    return root
