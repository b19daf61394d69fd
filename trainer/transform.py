"""Transform's preprocessing_fn: decode, resize, rescale to [-1, 1], and the label vocabulary.

Not materialized (see `pipeline.pipeline`): this graph is applied in the Trainer's input pipeline and inside
the exported SavedModel, so training and serving decode images with the very same ops.
"""

from __future__ import annotations

from typing import Any, Dict

import tensorflow as tf
import tensorflow_transform as tft

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


def decode_and_scale(encoded: tf.Tensor, image_size: int) -> tf.Tensor:
    """Encoded JPEG/PNG/GIF/BMP bytes [batch] -> float32 [batch, size, size, 3] in [-1, 1]."""

    def decode_one(data: tf.Tensor) -> tf.Tensor:
        image = tf.io.decode_image(data, channels=3, expand_animations=False, dtype=tf.uint8)
        image.set_shape([None, None, 3])
        return tf.image.resize(tf.cast(image, tf.float32), [image_size, image_size])

    images = tf.map_fn(
        decode_one, encoded, fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32)
    )
    # Rescaling(scale=1/127.5, offset=-1), as in the recipe; the clip only guards float rounding.
    return tf.clip_by_value(images / 127.5 - 1.0, -1.0, 1.0)


def preprocessing_fn(inputs: Dict[str, Any], custom_config: Dict[str, Any]) -> Dict[str, tf.Tensor]:
    data = custom_config["data"]
    encoded = _as_vector(inputs[data["image_key"]])
    label = _as_vector(inputs[data["label_key"]])
    if label.dtype != tf.string:  # e.g. TFDS's int64 labels
        label = tf.strings.as_string(label)
    return {
        IMAGE_XF: decode_and_scale(encoded, int(custom_config["image_size"])),
        LABEL_XF: tft.compute_and_apply_vocabulary(label, vocab_filename=LABEL_VOCAB, num_oov_buckets=0),
    }
