"""The frozen backbone's pooled features of a sample of training images, for the strategy's linear probe."""

from __future__ import annotations

from typing import List, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from tfx_image_finetune.trainer.data import list_files
from tfx_image_finetune.trainer.strategy import PROBE_SAMPLE, probe_accuracy
from tfx_image_finetune.trainer.transform import IMAGE_XF, LABEL_XF, checked_label_ids


def pooled_features(model, images) -> np.ndarray:
    """The model's GlobalAveragePooling output: what the head sees, with the base as it is now (frozen)."""
    from tfx_image_finetune.trainer.keras2 import keras

    extractor = keras.Model(model.input, model.get_layer("avg_pool").output)
    return extractor.predict(images, verbose=0)


def sample(file_patterns: List[str], tft_output: tft.TFTransformOutput, label_key: str, count: int = PROBE_SAMPLE,
           seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Up to `count` transformed training images and their label ids, drawn at random (files list by class)."""
    raw_spec, layer = tft_output.raw_feature_spec(), tft_output.transform_features_layer()
    ds = tf.data.TFRecordDataset(list_files(file_patterns), compression_type="GZIP")
    ds = ds.shuffle(4 * count, seed=seed).take(count).batch(64)
    images, labels = [], []
    for batch in ds:
        raw = tf.io.parse_example(batch, raw_spec)
        out = layer(raw)
        images.append(out[IMAGE_XF].numpy())
        labels.append(checked_label_ids(raw[label_key], out[LABEL_XF]).numpy())
    return np.concatenate(images), np.concatenate(labels).reshape(-1)


def measure(model, file_patterns, tft_output, label_key: str, num_classes: int) -> float:
    """Cross-validated linear-probe accuracy on the frozen features of a training sample."""
    images, labels = sample(file_patterns, tft_output, label_key)
    return probe_accuracy(pooled_features(model, images), labels, num_classes)
