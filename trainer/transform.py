"""Transform's preprocessing_fn: decode, resize, rescale to [-1, 1], and the label vocabulary.

Not materialized (see `pipeline.pipeline`): this graph is applied in the Trainer's input pipeline and inside
the exported SavedModel, so training and serving decode images with the very same ops.

Class ids follow the sorted class names (numerically sorted for integer labels), as Keras'
`image_dataset_from_directory` numbers them, and never the class balance: `tft.vocabulary` orders by
frequency, so a retrain on differently balanced data would swap the ids a TF Serving consumer reads.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam

from tfx_image_finetune.data_contract import MAX_IMAGE_PIXELS
from tfx_image_finetune.serving_contract import PIXEL_SCALE
from tfx_image_finetune.trainer import pixel_limit

IMAGE_XF = "image_xf"
LABEL_XF = "label_xf"
LABEL_VOCAB = "label_vocab"


def _as_vector(tensor) -> tf.Tensor:
    """A [batch] tensor from a [batch, 1] dense or a var-len sparse feature (first value of each row)."""
    if isinstance(tensor, tf.SparseTensor):
        default = "" if tensor.dtype == tf.string else 0
        tensor = tf.sparse.to_dense(tensor, default_value=tf.constant(default, tensor.dtype))
        tensor = tf.pad(tensor, [[0, 0], [0, 1]], constant_values=tf.constant(default, tensor.dtype))
    if tensor.shape.rank == 2:
        tensor = tensor[:, 0]
    return tensor


def decode_and_scale(encoded: tf.Tensor, image_size: int, max_pixels: int = MAX_IMAGE_PIXELS) -> tf.Tensor:
    """Encoded JPEG/PNG/GIF/BMP bytes [batch] -> float32 [batch, size, size, 3] in [-1, 1].

    An image whose header claims more than `max_pixels` fails with INVALID_ARGUMENT before it is decoded
    (trainer/pixel_limit.py): the serving signatures decode through this graph."""

    def decode_one(data: tf.Tensor) -> tf.Tensor:
        with tf.control_dependencies([pixel_limit.check(data, max_pixels)]):
            image = tf.io.decode_image(data, channels=3, expand_animations=False, dtype=tf.uint8)
        image.set_shape([None, None, 3])
        return tf.image.resize(tf.cast(image, tf.float32), [image_size, image_size])

    images = tf.map_fn(
        decode_one, encoded, fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32)
    )
    return scale_pixels(images)


def scale_pixels(pixels: tf.Tensor) -> tf.Tensor:
    """RGB 0..255 -> [-1, 1]: Rescaling(scale=1/127.5, offset=-1), as in the recipe (also inside the TFLite
    export, trainer/tflite.py); the clip only guards float rounding."""
    return tf.clip_by_value(pixels / PIXEL_SCALE - 1.0, -1.0, 1.0)


def sorted_labels(values: List[Any]) -> List[str]:
    """The distinct labels in class-id order: sorted names, or sorted numbers for integer labels."""
    distinct = set(values)
    if all(isinstance(v, (int, np.integer)) for v in distinct):
        return [str(v) for v in sorted(int(v) for v in distinct)]
    return sorted(v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in distinct)


def _write_vocabulary(values: List[Any], path: str) -> bytes:
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        f.write("".join(f"{name}\n" for name in sorted_labels(values)))
    return path.encode("utf-8")


class SortedLabelVocabulary(tft_beam.experimental.PTransformAnalyzer):
    """Analyzer: the distinct labels over the analyzed splits, written sorted as a vocabulary asset file."""

    def expand(self, batches):
        path = os.path.join(self.base_temp_dir, LABEL_VOCAB)
        return (
            batches
            | "Labels" >> beam.FlatMap(lambda batch: batch[0].ravel().tolist())
            | "Distinct" >> beam.Distinct()
            | "All" >> beam.combiners.ToList()
            | "Write" >> beam.Map(_write_vocabulary, path)
        )


def label_ids(label: tf.Tensor) -> tf.Tensor:
    """Label [batch] (string or integer) -> class id [batch]; -1 for a label outside the vocabulary."""
    if not (label.dtype == tf.string or label.dtype.is_integer):
        raise ValueError(f"the label feature must hold strings or integers (class names or ids), got {label.dtype.name}")
    (vocabulary,) = tft.experimental.ptransform_analyzer(
        [label], SortedLabelVocabulary(), [tf.string], [[]], output_asset_default_values=[LABEL_VOCAB.encode()],
        name="sorted_label_vocabulary",
    )
    return tft.apply_vocabulary(label_names(label), vocabulary, default_value=-1, name="label_ids")


def label_names(label: tf.Tensor) -> tf.Tensor:
    return label if label.dtype == tf.string else tf.strings.as_string(label)


def checked_label_ids(raw_label, ids: tf.Tensor) -> tf.Tensor:
    """`ids`, after an assertion that every label was in the vocabulary; the error names the unknown labels.

    Not inside preprocessing_fn: tf.Transform runs that graph before the vocabulary exists.
    """
    unknown = tf.boolean_mask(label_names(_as_vector(raw_label)), ids < 0)
    check = tf.debugging.Assert(
        tf.equal(tf.size(unknown), 0), ["label(s) not among the classes of the model:", unknown], summarize=10)
    with tf.control_dependencies([check]):
        return tf.identity(ids)


def preprocessing_fn(inputs: Dict[str, Any], custom_config: Dict[str, Any]) -> Dict[str, tf.Tensor]:
    """`custom_config`: image_key, label_key, image_size, max_image_pixels (only what this graph uses, so
    training changes leave Transform's cache valid; configs from before the pixel limit get its default)."""
    encoded = _as_vector(inputs[custom_config["image_key"]])
    max_pixels = int(custom_config.get("max_image_pixels") or MAX_IMAGE_PIXELS)
    return {
        IMAGE_XF: decode_and_scale(encoded, int(custom_config["image_size"]), max_pixels),
        LABEL_XF: label_ids(_as_vector(inputs[custom_config["label_key"]])),
    }
