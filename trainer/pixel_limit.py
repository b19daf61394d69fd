"""The pixel limit inside the graph: an image's size read from its header before it is decoded.

The exported model's twin of `tfx_image_finetune/image_header.py`: TF Serving hands the model any bytes, and
`tf.io.decode_image` allocates whatever the header claims (a 4.7 MB JPEG of 20000x20000 peaked at 6.6 GB).
JPEG: `tf.image.extract_jpeg_shape` (libjpeg reads the headers only); PNG, BMP: fixed header fields in the
first 32 bytes; GIF: the logical screen, and its frames' areas together (giflib reads every frame), found by
walking the blocks (a loop step per 255-byte data sub-block, no decoding).
"""

from __future__ import annotations

import tensorflow as tf

from tfx_image_finetune.data_contract import LIMIT_FLAG
from tfx_image_finetune.image_header import BMP_MAGIC, GIF_MAGIC, PNG_MAGIC, TOO_LARGE

_HEAD = 32  # bytes: every fixed header field read here lies within them


def _bytes(data: tf.Tensor, at, count: int) -> tf.Tensor:
    """`count` bytes of `data` from `at` as int64 (zeros past the end)."""
    piece = tf.strings.join([tf.strings.substr(data, at, count), "\0" * count])
    return tf.cast(tf.io.decode_raw(tf.strings.substr(piece, 0, count), tf.uint8), tf.int64)


def _number(head: tf.Tensor, at: int, size: int, big_endian: bool) -> tf.Tensor:
    """An unsigned integer of `size` bytes at `at` of the int64 header bytes."""
    value = tf.constant(0, tf.int64)
    for k in (range(size) if big_endian else reversed(range(size))):
        value = value * 256 + head[at + k]
    return value


def _signed32(value: tf.Tensor) -> tf.Tensor:
    return tf.where(value >= 2 ** 31, value - 2 ** 32, value)


def _colour_table(flags: tf.Tensor) -> tf.Tensor:
    """Bytes of the colour table a GIF screen or frame descriptor's flags announce."""
    size = tf.bitwise.left_shift(tf.constant(3, tf.int64), tf.bitwise.bitwise_and(flags, 7) + 1)
    return tf.where(tf.bitwise.bitwise_and(flags, 0x80) > 0, size, tf.constant(0, tf.int64))


def _gif_frames(data: tf.Tensor, head: tf.Tensor):
    """(the GIF's frames' areas together, its frame count): blocks walked as image_header._gif does."""
    length = tf.cast(tf.strings.length(data), tf.int64)

    def step(pos, in_sub_blocks, pixels, frames, done):
        block = _bytes(data, pos, 10)
        kind, is_frame = block[0], tf.logical_and(tf.logical_not(in_sub_blocks), tf.equal(block[0], 0x2C))
        is_extension = tf.logical_and(tf.logical_not(in_sub_blocks), tf.equal(kind, 0x21))
        after_frame = pos + 11 + _colour_table(block[9])  # descriptor, colour table, LZW code size
        next_pos = tf.where(in_sub_blocks, pos + kind + 1,  # a sub-block of `kind` bytes, or the 0 terminator
                            tf.where(is_extension, pos + 2, after_frame))
        area = (block[5] + 256 * block[6]) * (block[7] + 256 * block[8])
        return (next_pos, tf.where(in_sub_blocks, kind > 0, tf.logical_or(is_extension, is_frame)),
                pixels + tf.where(is_frame, area, tf.constant(0, tf.int64)), frames + tf.cast(is_frame, tf.int64),
                tf.logical_and(tf.logical_not(in_sub_blocks), tf.logical_not(tf.logical_or(is_extension, is_frame))))

    start = 13 + _colour_table(head[10])
    zero = tf.constant(0, tf.int64)
    _, _, pixels, frames, _ = tf.while_loop(
        lambda pos, _, __, ___, done: tf.logical_and(pos < length, tf.logical_not(done)), step,
        (start, tf.constant(False), zero, zero, tf.constant(False)))
    return pixels, frames


def size(data: tf.Tensor) -> tf.Tensor:
    """Encoded image (string scalar) -> int64 [width, height, pixels, frames] its header claims
    (image_header.size); zeros for bytes that are no image TensorFlow reads (the decoder refuses those with
    its own reason)."""
    head = _bytes(data, 0, _HEAD)

    def starts_with(magic: bytes) -> tf.Tensor:
        return tf.equal(tf.strings.substr(data, 0, len(magic)), magic)

    def with_area(width, height):  # each side at most 2**31: no int64 overflow
        return tf.stack([width, height, tf.minimum(width, 2 ** 31) * tf.minimum(height, 2 ** 31), 1])

    def jpeg():
        height_width = tf.cast(tf.image.extract_jpeg_shape(data)[:2], tf.int64)
        return with_area(height_width[1], height_width[0])

    def gif():
        width, height = _number(head, 6, 2, False), _number(head, 8, 2, False)
        pixels, frames = _gif_frames(data, head)
        return tf.stack([width, height, tf.maximum(width * height, pixels), tf.maximum(frames, 1)])

    return tf.case([
        (tf.image.is_jpeg(data), jpeg),
        (starts_with(PNG_MAGIC), lambda: with_area(_number(head, 16, 4, True), _number(head, 20, 4, True))),
        (starts_with(GIF_MAGIC), gif),
        (starts_with(BMP_MAGIC), lambda: with_area(tf.abs(_signed32(_number(head, 18, 4, False))),
                                                   tf.abs(_signed32(_number(head, 22, 4, False))))),
    ], default=lambda: tf.zeros([4], tf.int64), exclusive=False)


def dimensions(data: tf.Tensor) -> tf.Tensor:
    """int64 [width, height] of size()."""
    return size(data)[:2]


def check(data: tf.Tensor, max_pixels: int) -> tf.Operation:
    """An assertion (INVALID_ARGUMENT) that the image claims at most `max_pixels`; its message names the
    limit and the image's width x height, worded as image_header.too_large_reason."""
    width, height, pixels, frames = tf.unstack(size(data))
    limit = f" pixels, the limit is {int(max_pixels)} ({LIMIT_FLAG})"
    message = tf.where(
        tf.equal(pixels, tf.minimum(width, 2 ** 31) * tf.minimum(height, 2 ** 31)),
        tf.strings.format(TOO_LARGE + ": {}x{} = {}" + limit, [width, height, pixels]),
        tf.strings.format(TOO_LARGE + ": {}x{}, {} frame(s) = {}" + limit, [width, height, frames, pixels]))
    return tf.debugging.Assert(pixels <= int(max_pixels), [message], name="pixel_limit")
