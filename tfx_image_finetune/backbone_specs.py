"""The supported ImageNet backbones: their Keras application, input sizes and pixel scaling (built in
trainer/backbones.py; validated against in config.py). Stdlib only."""

from dataclasses import dataclass
from typing import Dict


@dataclass(frozen=True)
class Backbone:
    """A supported ImageNet backbone: its Keras application and input size.

    Transform always hands the model images scaled to [-1, 1] (the recipe's `Rescaling(1/127.5, offset=-1)`);
    `pixel_scaling` says what the backbone expects instead, and the model converts inside its graph.
    """

    name: str
    default_size: int
    # "minus_one_to_one": inputs already right; "zero_to_255": EfficientNet rescales inside itself;
    # "caffe": ResNet50's BGR mean subtraction on [0, 255].
    pixel_scaling: str
    keras_application: str  # attribute of keras.applications
    min_size: int = 32  # the smallest input side Keras applications accept for this backbone


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
