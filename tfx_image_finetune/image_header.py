"""An image's size from its header, without decoding it: the pixel limit's Python side.

A 4.7 MB JPEG or a 389 KB PNG can claim 20000x20000 pixels, which TensorFlow's decoders allocate in full
(1.2 GB as uint8 RGB, 6.6 GB peak measured), and a small GIF can hold hundreds of large frames, all read.
ExampleGen, predict and the report ask this module first and refuse an image above the limit; the exported
model does the same in its graph (`trainer/pixel_limit.py`). The formats are the ones `tf.io.decode_image`
reads, recognised by the same magic bytes. Pure Python, no TensorFlow: the CLI may import it.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

from tfx_image_finetune.data_contract import LIMIT_FLAG

TOO_LARGE = "image above the pixel limit"  # the ingest report's `kind` of such a skip

# Magic bytes, as tf.io.decode_image tells the formats apart.
JPEG_MAGIC, PNG_MAGIC, GIF_MAGIC, BMP_MAGIC = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF8", b"BM"
# JPEG start-of-frame markers (every coding process); C4 (DHT), C8 (JPG) and CC (DAC) are not frames.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class Size(NamedTuple):
    """What a header claims: width x height, and the pixels the decoder allocates for it (for a GIF, every
    frame's area together: giflib reads all frames, whatever TensorFlow keeps)."""

    width: int
    height: int
    pixels: int
    frames: int = 1


def size(data: bytes) -> Optional[Size]:
    """The image's Size from its header, or None when it is no image TensorFlow reads or the header is cut
    short (the decoder refuses those itself)."""
    if data.startswith(GIF_MAGIC):
        return _gif(data)
    found = dimensions(data)
    return Size(found[0], found[1], found[0] * found[1]) if found else None


def dimensions(data: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) the image's header claims (a GIF's logical screen), or None as for size()."""
    if data.startswith(JPEG_MAGIC):
        return _jpeg(data)
    if data.startswith(PNG_MAGIC):
        return (_be(data, 16, 4), _be(data, 20, 4)) if len(data) >= 24 and data[12:16] == b"IHDR" else None
    if data.startswith(GIF_MAGIC):
        return (_le(data, 6, 2), _le(data, 8, 2)) if len(data) >= 13 else None
    if data.startswith(BMP_MAGIC) and len(data) >= 26:
        # 32-bit sizes at 18 and 22 (as TensorFlow reads every BMP; negative height: top-down rows), or the
        # 16-bit ones of an OS/2 header (as PIL reads it): the larger claim counts.
        sizes = [(abs(_signed(_le(data, 18, 4))), abs(_signed(_le(data, 22, 4))))]
        if _le(data, 14, 4) == 12:
            sizes.append((_le(data, 18, 2), _le(data, 20, 2)))
        return max(sizes, key=lambda size: size[0] * size[1])
    return None


def pixel_limit_error(data: bytes, max_pixels: int) -> str:
    """'' if the image's header claims at most `max_pixels` pixels (or cannot be read), else the reason."""
    found = size(data)
    if found is None or found.pixels <= max_pixels:
        return ""
    return too_large_reason(found, max_pixels)


def too_large_reason(found: Size, max_pixels: int) -> str:
    """The one wording of a refusal (trainer/pixel_limit.py formats the same text in the graph)."""
    frames = "" if found.pixels == found.width * found.height else f", {found.frames} frame(s)"
    return (f"{TOO_LARGE}: {found.width}x{found.height}{frames} = {found.pixels} pixels, the limit is {max_pixels} "
            f"({LIMIT_FLAG})")


def _jpeg(data: bytes) -> Optional[Tuple[int, int]]:
    """The first start-of-frame segment's size, walking the marker segments as libjpeg does (bytes between
    segments skipped, fill bytes and stand-alone markers passed over)."""
    i, n = 2, len(data)
    while i < n:
        if data[i] != 0xFF:
            i += 1
            continue
        while i < n and data[i] == 0xFF:
            i += 1
        if i + 2 >= n:
            return None
        marker = data[i]
        i += 1
        if marker == 0x00 or marker == 0x01 or 0xD0 <= marker <= 0xD8:  # not a segment: no length follows
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        if marker in _SOF_MARKERS:
            return (_be(data, i + 5, 2), _be(data, i + 3, 2)) if i + 7 <= n else None
        i += _be(data, i, 2)
    return None


def _gif(data: bytes) -> Optional[Size]:
    """The logical screen; its pixels: the frames' areas together, or the screen's when that is more."""
    if len(data) < 13:
        return None
    width, height = _le(data, 6, 2), _le(data, 8, 2)
    frames = frame_pixels = 0
    i = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)  # after the global colour table
    while i < len(data):
        block = data[i]
        if block == 0x21:  # extension: label, then data sub-blocks
            i = _skip_sub_blocks(data, i + 2)
        elif block == 0x2C and i + 10 <= len(data):  # image descriptor: x, y, width, height, flags
            frames += 1
            frame_pixels += _le(data, i + 5, 2) * _le(data, i + 7, 2)
            flags = data[i + 9]
            i = _skip_sub_blocks(data, i + 11 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0))
        else:  # the trailer, or what the decoder will refuse
            break
    return Size(width, height, max(width * height, frame_pixels), max(frames, 1))


def _skip_sub_blocks(data: bytes, i: int) -> int:
    while i < len(data) and data[i]:
        i += data[i] + 1
    return i + 1


def _be(data: bytes, at: int, size: int) -> int:
    return int.from_bytes(data[at:at + size], "big")


def _le(data: bytes, at: int, size: int) -> int:
    return int.from_bytes(data[at:at + size], "little")


def _signed(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value
