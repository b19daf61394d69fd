"""The pixel limit inside the graph: an image's width and height read from its header before it is decoded.

The exported model's twin of `tfx_image_finetune/image_header.py`: TF Serving hands the model any bytes, and
`tf.io.decode_image` allocates whatever size the header claims (a 4.7 MB JPEG of 20000x20000 peaked at
6.6 GB). JPEG: `tf.image.extract_jpeg_shape` (libjpeg reads the headers only); PNG, GIF, BMP: fixed header
fields, read from the first 32 bytes. A GIF's frames are not walked here (its logical screen counts).
"""

from __future__ import annotations

import tensorflow as tf

from tfx_image_finetune.image_header import BMP_MAGIC, GIF_MAGIC, LIMIT_FLAG, PNG_MAGIC, TOO_LARGE

_HEAD = 32  # bytes: every header field read here lies within them


def _number(head: tf.Tensor, at: int, size: int, big_endian: bool) -> tf.Tensor:
    """An unsigned integer of `size` bytes at `at` of the uint8 header, as int64."""
    value = tf.constant(0, tf.int64)
    for k in (range(size) if big_endian else reversed(range(size))):
        value = value * 256 + head[at + k]
    return value


def _signed32(value: tf.Tensor) -> tf.Tensor:
    return tf.where(value >= 2 ** 31, value - 2 ** 32, value)


def dimensions(data: tf.Tensor) -> tf.Tensor:
    """Encoded image (string scalar) -> int64 [width, height] its header claims; [0, 0] for bytes that are
    no image TensorFlow reads (the decoder refuses those with its own reason)."""
    padded = tf.strings.join([tf.strings.substr(data, 0, _HEAD), "\0" * _HEAD])
    head = tf.cast(tf.io.decode_raw(tf.strings.substr(padded, 0, _HEAD), tf.uint8), tf.int64)

    def starts_with(magic: bytes) -> tf.Tensor:
        return tf.equal(tf.strings.substr(data, 0, len(magic)), magic)

    def jpeg():
        height_width = tf.cast(tf.image.extract_jpeg_shape(data)[:2], tf.int64)
        return tf.reverse(height_width, [0])

    return tf.case([
        (tf.image.is_jpeg(data), jpeg),
        (starts_with(PNG_MAGIC), lambda: tf.stack([_number(head, 16, 4, True), _number(head, 20, 4, True)])),
        (starts_with(GIF_MAGIC), lambda: tf.stack([_number(head, 6, 2, False), _number(head, 8, 2, False)])),
        (starts_with(BMP_MAGIC), lambda: tf.abs(tf.stack([_signed32(_number(head, 18, 4, False)),
                                                          _signed32(_number(head, 22, 4, False))]))),
    ], default=lambda: tf.zeros([2], tf.int64), exclusive=False)


def check(data: tf.Tensor, max_pixels: int) -> tf.Operation:
    """An assertion (INVALID_ARGUMENT) that the image claims at most `max_pixels`; its message names the
    limit and the image's width x height, worded as image_header.too_large_reason."""
    size = dimensions(data)
    pixels = tf.minimum(size[0], 2 ** 31) * tf.minimum(size[1], 2 ** 31)  # no int64 overflow
    message = tf.strings.format(
        TOO_LARGE + ": {}x{} = {} pixels, the limit is " + f"{int(max_pixels)} ({LIMIT_FLAG})",
        [size[0], size[1], pixels])
    return tf.debugging.Assert(pixels <= int(max_pixels), [message], name="pixel_limit")
