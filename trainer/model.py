"""The recipe's model: augmentation -> backbone (training=False) -> GAP -> Dropout -> Dense, and its phases.

Keras 2 (tf_keras), which TFT and TFMA require.
"""

from __future__ import annotations

import logging
from typing import Optional, Tuple

from tfx_image_finetune.trainer.keras2 import keras, tf

from tfx_image_finetune.backbone_specs import BACKBONES
from tfx_image_finetune.config import ConfigError, ModelConfig, Strategy
from tfx_image_finetune.trainer.backbones import build_backbone
from tfx_image_finetune.trainer.transform import IMAGE_XF

log = logging.getLogger(__name__)


class WeightsUnavailableError(ConfigError):
    """The ImageNet weights could not be downloaded and no fallback was allowed."""


class BackboneBuildError(ConfigError):
    """Keras refuses to build the backbone as configured (e.g. image size below its minimum, unknown alpha)."""


class WeightsFileError(ConfigError):
    """The --weights file is not weights for the configured backbone."""


def keras_weights(model_cfg: ModelConfig) -> Optional[str]:
    """What to pass as Keras `weights=`: 'imagenet', a file path, or None (random init)."""
    weights = model_cfg.weights
    if weights == "none":
        return None
    if weights != "imagenet" and not tf.io.gfile.exists(weights):
        raise FileNotFoundError(f"--weights: no weights file at {weights!r}")
    return weights


def resolve_weights(model_cfg: ModelConfig) -> Optional[str]:
    """keras_weights(), with the ImageNet download tried now (Keras caches it under ~/.keras/models), so a
    failure is reported before a long run starts; None where the demo may fall back to random init."""
    weights = keras_weights(model_cfg)
    if weights != "imagenet":
        return weights
    try:
        build_checked(model_cfg, "imagenet")
        return "imagenet"
    except WeightsUnavailableError as err:
        if model_cfg.allow_random_init:
            log.warning(
                "Could not download the ImageNet weights for %s (%s). The demo continues from RANDOM "
                "initialisation, so its accuracy says nothing about the recipe. Pass --weights PATH "
                "to use a local weights file.",
                model_cfg.backbone,
                err.__cause__,
            )
            return None
        raise


def build_checked(model_cfg: ModelConfig, weights: Optional[str]) -> keras.Model:
    """The backbone with `weights`; Keras' failures as errors that name the setting to change."""
    backbone, size, alpha = BACKBONES[model_cfg.backbone], model_cfg.input_size, model_cfg.alpha
    try:
        return build_backbone(backbone, size, weights, alpha)
    except (ValueError, TypeError, OSError) as err:  # Keras' own argument checks, or a file that does not fit
        if weights not in (None, "imagenet"):
            raise WeightsFileError(
                f"--weights {weights!r} does not fit backbone {backbone.name!r} (alpha {alpha}, {size} px): "
                f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from err
        raise BackboneBuildError(
            f"Cannot build backbone {backbone.name!r} at {size} px (alpha {alpha}): {err}") from err
    except Exception as err:  # Keras raises plain Exception for a failed fetch
        raise WeightsUnavailableError(
            f"Could not download the ImageNet weights for backbone {backbone.name!r} ({err}). "
            "Pass --weights PATH with a local weights file (or --weights none to train from scratch)."
        ) from err


def _to_backbone_scale(x: tf.Tensor, pixel_scaling: str) -> tf.Tensor:
    """Transform gives [-1, 1]; convert to the scaling the backbone was trained with."""
    if pixel_scaling == "minus_one_to_one":
        return x
    x = keras.layers.Rescaling(127.5, offset=127.5, name="to_0_255")(x)
    if pixel_scaling == "caffe":
        x = keras.layers.Lambda(keras.applications.resnet50.preprocess_input, name="caffe_preprocess")(x)
    return x


def build_model(
    model_cfg: ModelConfig, num_classes: int, weights: Optional[str], seed: int = 42
) -> Tuple[keras.Model, keras.Model]:
    """Returns (model, base). Dense(1) logits for two classes, Dense(N) logits for more."""
    if num_classes < 2:
        raise ValueError(f"need at least two classes, got {num_classes}")
    backbone, image_size = BACKBONES[model_cfg.backbone], model_cfg.input_size
    base = build_checked(model_cfg, weights)
    inputs = keras.Input(shape=(image_size, image_size, 3), name=IMAGE_XF)
    augmentation = keras.Sequential(
        [keras.layers.RandomFlip("horizontal", seed=seed), keras.layers.RandomRotation(0.1, seed=seed)],
        name="augmentation",
    )
    x = augmentation(inputs)  # random layers are identity outside training
    x = _to_backbone_scale(x, backbone.pixel_scaling)
    x = base(x, training=False)  # BatchNorm stays in inference mode, even once unfrozen
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = keras.layers.Dropout(model_cfg.dropout, name="dropout")(x)
    # float32 logits also under --mixed-precision (float16 compute): losses and probabilities stay float32
    outputs = keras.layers.Dense(1 if num_classes == 2 else num_classes, name="logits", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=f"{backbone.name}_finetune"), base


def set_phase(base: keras.Model, phase: int, model_cfg: ModelConfig) -> None:
    """Phase 1: base frozen. Phase 2 (strategies 1 and 2; `phases()` gives CLASSIFIER_ONLY none): WHOLE_NETWORK
    unfreezes the whole base, UPPER_LAYERS only its top part."""
    if phase == 1:
        base.trainable = False
        return
    base.trainable = True
    if model_cfg.strategy == Strategy.UPPER_LAYERS:
        for layer in base.layers[: first_unfrozen_layer(base, model_cfg)]:
            layer.trainable = False


def first_unfrozen_layer(base: keras.Model, model_cfg: ModelConfig) -> int:
    """Index of the lowest base layer that strategy 2 trains."""
    name = model_cfg.unfreeze_from_layer
    if name:
        names = [layer.name for layer in base.layers]
        if name not in names:
            raise ValueError(f"model.unfreeze_from_layer: {name!r} is not a layer of {base.name}")
        return names.index(name)
    return int(round(len(base.layers) * (1.0 - model_cfg.unfreeze_fraction)))


def compile_model(model: keras.Model, num_classes: int, learning_rate: float) -> None:
    if num_classes == 2:
        loss = keras.losses.BinaryCrossentropy(from_logits=True)
        accuracy = keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)  # logits: 0 is p=0.5
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=[accuracy])


def probabilities(logits: tf.Tensor, num_classes: int) -> tf.Tensor:
    """Per-class probabilities [batch, num_classes] from the head's logits."""
    if num_classes == 2:
        positive = tf.sigmoid(logits[:, 0])
        return tf.stack([1.0 - positive, positive], axis=1)
    return tf.nn.softmax(logits, axis=-1)


def calibrate_batchnorm(model: keras.Model, base: keras.Model, images: tf.Tensor) -> None:
    """Random init only: set the base's BatchNorm moving statistics from a batch of training images.

    The base is always called with training=False, so its BatchNorm layers use their moving statistics;
    freshly initialised ones (mean 0, variance 1) normalise nothing and the activations of a deep random
    network fade to ~0, leaving the head nothing to learn from. One training-mode pass with momentum 0
    makes them the data's statistics, as pretrained weights would have them.
    """
    to_base_input = keras.Model(model.input, base.get_input_at(len(base.inbound_nodes) - 1))
    layers = [layer for layer in base.submodules if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [(layer.momentum, layer.trainable) for layer in layers]
    trainable = base.trainable
    base.trainable = True  # a frozen BatchNorm ignores training=True
    for layer in layers:
        layer.momentum = 0.0
    base(to_base_input(images, training=False), training=True)
    for layer, (momentum, layer_trainable) in zip(layers, saved):
        layer.momentum, layer.trainable = momentum, layer_trainable
    base.trainable = trainable
