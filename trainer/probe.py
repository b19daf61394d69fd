"""The frozen backbone's pooled features of a sample of training images, for the strategy's linear probe."""

from __future__ import annotations

from typing import List, Optional

import tensorflow as tf
import tensorflow_transform as tft

from tfx_image_finetune.data_contract import EXAMPLES_COMPRESSION
from tfx_image_finetune.trainer.cached_features import pooled_features
from tfx_image_finetune.trainer.data import list_files, transform_fn
from tfx_image_finetune.trainer.strategy import PROBE_SAMPLE, probe_accuracy


def sample(file_patterns: List[str], tft_output: tft.TFTransformOutput, label_key: str, count: int = PROBE_SAMPLE,
           seed: int = 0) -> tf.data.Dataset:
    """(images, label ids) batches of up to `count` transformed training images, drawn at random (files list
    by class)."""
    ds = tf.data.TFRecordDataset(list_files(file_patterns), compression_type=EXAMPLES_COMPRESSION)
    return ds.shuffle(4 * count, seed=seed).take(count).batch(64).map(transform_fn(tft_output, label_key))


def measure(model, file_patterns, tft_output, label_key: str, num_classes: int) -> Optional[float]:
    """Cross-validated linear-probe accuracy on the frozen features (what the head sees) of a training sample:
    one view of each image, no augmentation. None: a class too rare in the sample to cross-validate."""
    features, labels = pooled_features(model, sample(file_patterns, tft_output, label_key), 1, augment=False)
    return probe_accuracy(features, labels.reshape(-1), num_classes)
