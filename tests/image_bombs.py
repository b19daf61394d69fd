"""Decompression bombs for the pixel-limit tests and benchmarks/bomb_memory.py, made small and fast.

`jpeg_bomb` and `png_bomb` are real, validly encoded images of the full size (every 8x8 block of the JPEG and
every row of the PNG is in the file; decoders read them to the end), written without ever holding the pixels:
one mid-grey colour compresses to almost nothing. `claiming` patches a small real image's header to claim
another size (only the header is true then): the cheap case, for every format.
"""

from __future__ import annotations

import io
import struct
import zlib

BOMB_SIDE = 20000


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def jpeg_bomb(width: int = BOMB_SIDE, height: int = BOMB_SIDE) -> bytes:
    """A baseline greyscale JPEG of width x height mid-grey pixels (both multiples of 8): per 8x8 block a DC
    difference of 0 and an end-of-block, 2 bits with one-code Huffman tables. 20000x20000: 1.6 MB."""
    assert width % 8 == 0 and height % 8 == 0
    tables = (_segment(0xDB, b"\x00" + b"\x01" * 64)  # quantisation table 0: all ones
              + _segment(0xC4, b"\x00" + bytes([1] + [0] * 15) + b"\x00")  # DC table 0: category 0, code '0'
              + _segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00"))  # AC table 0: end of block, code '0'
    frame = _segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
    scan = _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    bits = (width // 8) * (height // 8) * 2
    entropy = b"\x00" * (bits // 8) + (bytes([0xFF >> (bits % 8)]) if bits % 8 else b"")  # padded with 1 bits
    return b"\xff\xd8" + tables + frame + scan + entropy + b"\xff\xd9"


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bomb(width: int = BOMB_SIDE, height: int = BOMB_SIDE, rgb: bool = False) -> bytes:
    """A PNG of width x height black pixels, 1-bit greyscale (20000x20000: 50 KB, 0.1 s) or 8-bit RGB (the
    issue's kind: 1.2 GB of rows deflated, ~1 MB, a few seconds)."""
    row = b"\x00" * (1 + (width * 3 if rgb else (width + 7) // 8))  # filter byte 0, then the samples
    rows_per_piece = max(1, (8 << 20) // len(row))
    deflate, pieces = zlib.compressobj(9), []
    for start in range(0, height, rows_per_piece):
        pieces.append(deflate.compress(row * min(rows_per_piece, height - start)))
    pieces.append(deflate.flush())
    header = struct.pack(">IIBBBBB", width, height, 8 if rgb else 1, 2 if rgb else 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", b"".join(pieces)) + _chunk(b"IEND", b"")


def small_image(fmt: str, color=(200, 30, 30), size=(16, 16)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


def animated_gif(side: int, frames: int) -> bytes:
    """A real GIF of `frames` side x side frames (alternating colours, so none is merged away)."""
    from PIL import Image

    images = [Image.new("RGB", (side, side), (200 * (i % 2), 50, 50)) for i in range(frames)]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:])
    return buf.getvalue()


def claiming(fmt: str, width: int, height: int) -> bytes:
    """A small real image of format `fmt` (JPEG, PNG, GIF, BMP) whose header claims width x height."""
    data = bytearray(small_image(fmt))
    if fmt == "PNG":  # IHDR's width and height, then its CRC
        data[16:24] = struct.pack(">II", width, height)
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    elif fmt == "JPEG":  # the start-of-frame segment's height and width
        at = data.index(b"\xff\xc0") + 5
        data[at:at + 4] = struct.pack(">HH", height, width)
    elif fmt == "GIF":  # the logical screen
        data[6:10] = struct.pack("<HH", width, height)
    elif fmt == "BMP":  # BITMAPINFOHEADER's width and height
        data[18:26] = struct.pack("<ii", width, height)
    else:
        raise ValueError(fmt)
    return bytes(data)


def export_model(folder: str, transform_config: dict):
    """A SavedModel at <folder>/model from the project's export code: tf.Transform's graph (preprocessing_fn
    with `transform_config`, analyzed on two images) and a tiny Keras head, two classes; loaded."""
    import os

    import tensorflow as tf
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

    from tfx_image_finetune.trainer.export import ServingModule, export_saved_model
    from tfx_image_finetune.trainer.keras2 import keras
    from tfx_image_finetune.trainer.transform import preprocessing_fn

    spec = {"image": tf.io.FixedLenFeature([1], tf.string), "label": tf.io.FixedLenFeature([1], tf.string)}
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    rows = [{"image": [small_image("PNG", (0, 0, 250))], "label": [b"blue"]},
            {"image": [small_image("JPEG")], "label": [b"red"]}]
    transform_dir = os.path.join(folder, "transform")
    with tft_beam.Context(temp_dir=os.path.join(folder, "tmp"), force_tf_compat_v1=False):
        transform_fn = (rows, metadata) | tft_beam.AnalyzeDataset(lambda x: preprocessing_fn(x, transform_config))
        _ = transform_fn | tft_beam.WriteTransformFn(transform_dir)
    metadata_io.write_metadata(metadata, os.path.join(transform_dir, "metadata"))
    side = transform_config["image_size"]
    model = keras.Sequential([keras.layers.GlobalAveragePooling2D(input_shape=(side, side, 3)), keras.layers.Dense(1)])
    module = ServingModule(model, tft.TFTransformOutput(transform_dir), ["blue", "red"], "image", "label")
    export_saved_model(module, os.path.join(folder, "model"), ["blue", "red"], {}, [small_image("JPEG")])
    return tf.saved_model.load(os.path.join(folder, "model"))
