"""tf.data input pipeline: raw tf.Examples -> Transform graph -> (image, label) batches.

Transform does not materialize its output (decoded float images are ~100x the JPEGs); the graph is applied
here instead, once, and the decoded images are cached in memory so later epochs skip the JPEG decoding.
"""

from __future__ import annotations

from collections import Counter
from typing import Dict, List

import tensorflow as tf
import tensorflow_transform as tft

from trainer.transform import IMAGE_XF, LABEL_XF, checked_label_ids, label_names

_DECODE_BATCH = 64


def list_files(file_patterns: List[str]) -> List[str]:
    files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no example files match {file_patterns}")
    return files


def make_dataset(
    file_patterns: List[str],
    tft_output: tft.TFTransformOutput,
    label_key: str,
    batch_size: int,
    training: bool,
    cache_in_memory: bool = True,
    shuffle_buffer: int = 1000,
    seed: int = 42,
) -> tf.data.Dataset:
    raw_spec = tft_output.raw_feature_spec()
    tft_layer = tft_output.transform_features_layer()

    def transform(serialized):
        raw = tf.io.parse_example(serialized, raw_spec)
        transformed = tft_layer(raw)
        return transformed[IMAGE_XF], checked_label_ids(raw[label_key], transformed[LABEL_XF])

    ds = tf.data.TFRecordDataset(list_files(file_patterns), compression_type="GZIP")
    ds = ds.batch(_DECODE_BATCH).map(transform, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
    if cache_in_memory:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def raw_images(file_patterns: List[str], image_key: str, count: int) -> List[bytes]:
    """The first `count` encoded images of the raw examples (for TF Serving warmup requests)."""
    ds = tf.data.TFRecordDataset(list_files(file_patterns), compression_type="GZIP").take(count)
    spec = {image_key: tf.io.FixedLenFeature([1], tf.string)}
    return [tf.io.parse_single_example(record, spec)[image_key].numpy()[0] for record in ds]


def label_counts(file_patterns: List[str], tft_output: tft.TFTransformOutput, label_key: str) -> Dict[str, int]:
    """{class name: examples} of the raw examples, reading only the label feature (no image decoding)."""
    spec = {label_key: tft_output.raw_feature_spec()[label_key]}
    counts: Counter = Counter()
    ds = tf.data.TFRecordDataset(list_files(file_patterns), compression_type="GZIP").batch(1024)
    for batch in ds:
        label = tf.io.parse_example(batch, spec)[label_key]
        if isinstance(label, tf.SparseTensor):
            label = label.values
        counts.update(v.decode("utf-8") for v in label_names(tf.reshape(label, [-1])).numpy())
    return dict(counts)
