"""The supported ImageNet backbones: input size, the pixel scaling each was trained with, how to build it.

Transform always hands the model images scaled to [-1, 1] (the recipe's `Rescaling(1/127.5, offset=-1)`);
`pixel_scaling` says what the backbone expects instead, and `trainer.model` converts inside the graph, so the
exported model carries it. Importing this module does not import TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict


@dataclass(frozen=True)
class Backbone:
    name: str
    default_size: int
    # "minus_one_to_one": inputs already right; "zero_to_255": EfficientNet rescales inside itself;
    # "caffe": ResNet50's BGR mean subtraction on [0, 255].
    pixel_scaling: str
    keras_application: str  # attribute of keras.applications
    min_size: int = 32  # the smallest input side Keras applications accept for this backbone

    def build(self, input_size: int, weights: Any, alpha: float = 1.0):
        from trainer.keras2 import keras

        factory: Callable = getattr(keras.applications, self.keras_application)
        kwargs: Dict[str, Any] = dict(include_top=False, weights=weights, input_shape=(input_size, input_size, 3))
        if self.name == "mobilenet_v2":
            kwargs["alpha"] = alpha
        return factory(**kwargs)


BACKBONES: Dict[str, Backbone] = {
    b.name: b
    for b in (
        Backbone("xception", 150, "minus_one_to_one", "Xception", min_size=71),
        Backbone("mobilenet_v2", 160, "minus_one_to_one", "MobileNetV2"),
        Backbone("efficientnet_b0", 224, "zero_to_255", "EfficientNetB0"),
        Backbone("resnet50", 224, "caffe", "ResNet50"),
    )
}

# MobileNetV2 widths Keras has ImageNet weights for.
MOBILENET_V2_IMAGENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
