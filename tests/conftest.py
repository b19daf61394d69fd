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


def small_config(output_dir: str, data: str):
    """MobileNetV2-0.35 at 96 px from random init, one epoch per phase: the pipeline's mechanics, quickly."""
    from pipeline.configs import PipelineConfig

    cfg = PipelineConfig()
    cfg.data.path = data
    cfg.model.backbone, cfg.model.alpha, cfg.model.image_size, cfg.model.weights = "mobilenet_v2", 0.35, 96, "none"
    cfg.training.head_epochs, cfg.training.finetune_epochs = 1, 1
    cfg.eval.accuracy_threshold = 0.0
    cfg.runtime.output_dir = output_dir
    return cfg


@pytest.fixture(scope="session")
def first_run(demo_images, tmp_path_factory):
    """One real LocalDagRunner run over the demo images, shared by the end-to-end and serving tests."""
    from pipeline import local_runner

    cfg = small_config(str(tmp_path_factory.mktemp("e2e")), demo_images)
    local_runner.run(cfg)
    return cfg


@pytest.fixture(scope="session")
def demo_images(tmp_path_factory):
    from pipeline import demo_data

    root = str(tmp_path_factory.mktemp("demo_images"))
    demo_data.generate(root, per_class=60)
    return root
