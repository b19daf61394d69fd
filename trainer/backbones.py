"""Builds a backbone of the table in `tfx_image_finetune.backbone_specs` with Keras applications."""

from __future__ import annotations

from typing import Any, Callable, Dict

from tfx_image_finetune.backbone_specs import Backbone


def build_backbone(backbone: Backbone, input_size: int, weights: Any, alpha: float = 1.0):
    """The Keras application without its top, for `input_size` square RGB inputs."""
    from tfx_image_finetune.trainer.keras2 import keras

    factory: Callable = getattr(keras.applications, backbone.keras_application)
    kwargs: Dict[str, Any] = dict(include_top=False, weights=weights, input_shape=(input_size, input_size, 3))
    if backbone.name == "mobilenet_v2":
        kwargs["alpha"] = alpha
    return factory(**kwargs)
