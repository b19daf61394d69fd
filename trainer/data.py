"""tf.data input pipeline: raw tf.Examples -> Transform graph -> (image, label) batches.

Transform does not materialize its output (decoded float images are ~100x the JPEGs); the graph is applied
here instead. Two ways, chosen by `choose_input` from the example count, the image size and the memory budget:
- in memory: decoded once, cached, later epochs skip the JPEG decoding (fast; memory grows with the data);
- streamed: the encoded records are shuffled (a bounded buffer of bytes) and decoded every epoch with a
  parallel map, so memory stays flat whatever the data size.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Dict, List

import tensorflow as tf
import tensorflow_transform as tft

from tfx_image_finetune.data_contract import EXAMPLES_COMPRESSION
from tfx_image_finetune.trainer.transform import IMAGE_XF, LABEL_XF, checked_label_ids, label_names

log = logging.getLogger(__name__)
_DECODE_BATCH = 64
STREAM_SHUFFLE_RECORDS = 4096  # encoded images in the streamed shuffle buffer (~25 KB each for photos)
MIB = 1024 ** 2


def decoded_bytes(examples: int, image_size: int) -> int:
    """Memory of `examples` decoded float32 RGB images at `image_size` px."""
    return examples * image_size * image_size * 3 * 4


def choose_input(train_examples: int, eval_examples: int, image_size: int, budget_mb: int) -> Dict[str, int]:
    """In memory if both splits' decoded images fit the budget, else streamed; what is left of the budget
    bounds the phase-1 feature cache. Returned as history.json's `input` (the report shows it)."""
    need = decoded_bytes(train_examples + eval_examples, image_size)
    budget = budget_mb * MIB
    in_memory = need <= budget
    return {"in_memory": in_memory, "decoded_mib": round(need / MIB), "budget_mib": budget_mb,
            "feature_budget_bytes": max(budget - need, 0) if in_memory else budget}


def list_files(file_patterns: List[str]) -> List[str]:
    files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no example files match {file_patterns}")
    return files


def transform_fn(tft_output: tft.TFTransformOutput, label_key: str):
    """serialized tf.Example batch -> (images, label ids): the Transform graph, unknown labels named."""
    raw_spec = tft_output.raw_feature_spec()
    tft_layer = tft_output.transform_features_layer()

    def transform(serialized):
        raw = tf.io.parse_example(serialized, raw_spec)
        transformed = tft_layer(raw)
        return transformed[IMAGE_XF], checked_label_ids(raw[label_key], transformed[LABEL_XF])

    return transform


def make_dataset(
    file_patterns: List[str],
    tft_output: tft.TFTransformOutput,
    label_key: str,
    batch_size: int,
    training: bool,
    in_memory: bool = True,
    shuffle_buffer: int = 1000,
    seed: int = 42,
    workers: int = 1,
    examples: int = 0,
) -> tf.data.Dataset:
    """(images, labels) batches of `batch_size`; on several workers that is the global batch, which
    tf.distribute splits, each worker reading its part of the files (or, with fewer files than workers, of
    the `examples`)."""
    transform = transform_fn(tft_output, label_key)
    files = list_files(file_patterns)
    if workers > 1 and len(files) < workers and examples:
        batch_size = splittable_batch_size(examples, batch_size, workers)
    return _make(files, transform, batch_size, training, in_memory, shuffle_buffer, seed).with_options(
        sharded_by(len(files), workers))


def splittable_batch_size(examples: int, batch_size: int, workers: int) -> int:
    """The batch size nearest `batch_size` whose last batch is empty or has an example for every worker.

    Sharded by example, tf.distribute splits each global batch between the workers: a last batch of fewer
    examples than workers hands some worker an empty batch, which the backbone's convolutions refuse (measured
    here: 25 examples in batches of 8 on 2 workers failed in MobileNetV2's first depthwise convolution)."""
    for delta in range(batch_size):
        for size in (batch_size + delta, batch_size - delta):
            if size >= 1 and (examples % size == 0 or examples % size >= workers):
                if size != batch_size:
                    log.info("global batch size %d instead of %d: %d examples leave every one of %d workers a "
                             "last batch", size, batch_size, examples, workers)
                return size
    return batch_size


def sharded_by(files: int, workers: int) -> tf.data.Options:
    """tf.distribute's auto-sharding: by file where every worker gets one, else by example (AUTO would fail)."""
    options = tf.data.Options()
    policy = tf.data.experimental.AutoShardPolicy
    options.experimental_distribute.auto_shard_policy = policy.FILE if files >= workers else policy.DATA
    return options


def _make(files, transform, batch_size, training, in_memory, shuffle_buffer, seed) -> tf.data.Dataset:
    if in_memory:
        ds = tf.data.TFRecordDataset(files, compression_type=EXAMPLES_COMPRESSION)
        ds = ds.batch(_DECODE_BATCH).map(transform, num_parallel_calls=tf.data.AUTOTUNE).unbatch().cache()
        if training:
            ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    ds = tf.data.Dataset.from_tensor_slices(files)
    if training:  # shards in a new order each epoch, read interleaved, records shuffled as bytes
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(lambda f: tf.data.TFRecordDataset(f, compression_type=EXAMPLES_COMPRESSION),
                       cycle_length=min(len(files), 8), num_parallel_calls=tf.data.AUTOTUNE,
                       deterministic=not training)
    if training:
        ds = ds.shuffle(max(shuffle_buffer, STREAM_SHUFFLE_RECORDS), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(transform, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def raw_images(file_patterns: List[str], image_key: str, count: int) -> List[bytes]:
    """The first `count` encoded images of the raw examples (for TF Serving warmup requests)."""
    ds = tf.data.TFRecordDataset(list_files(file_patterns), compression_type=EXAMPLES_COMPRESSION).take(count)
    spec = {image_key: tf.io.FixedLenFeature([1], tf.string)}
    return [tf.io.parse_single_example(record, spec)[image_key].numpy()[0] for record in ds]


def label_counts(file_patterns: List[str], tft_output: tft.TFTransformOutput, label_key: str) -> Dict[str, int]:
    """{class name: examples} of the raw examples, reading only the label feature (no image decoding)."""
    spec = {label_key: tft_output.raw_feature_spec()[label_key]}
    counts: Counter = Counter()
    ds = tf.data.TFRecordDataset(list_files(file_patterns), compression_type=EXAMPLES_COMPRESSION).batch(1024)
    for batch in ds:
        label = tf.io.parse_example(batch, spec)[label_key]
        if isinstance(label, tf.SparseTensor):
            label = label.values
        counts.update(v.decode("utf-8") for v in label_names(tf.reshape(label, [-1])).numpy())
    return dict(counts)
