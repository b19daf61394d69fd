"""An image's width and height from its header, without decoding it: the pixel limit's Python side.

A 4.7 MB JPEG or a 389 KB PNG can claim 20000x20000 pixels, which TensorFlow's decoders allocate in full
(1.2 GB as uint8 RGB, 6.6 GB peak measured). ExampleGen, predict and the report ask this module first and
refuse an image above the limit; the exported model does the same in its graph (`trainer/pixel_limit.py`).
The formats are the ones `tf.io.decode_image` reads, recognised by the same magic bytes. Pure Python, no
TensorFlow: the CLI may import it.
"""

from __future__ import annotations

from typing import Optional, Tuple

from tfx_image_finetune.config import LIMIT_FLAG, MAX_IMAGE_PIXELS  # noqa: F401 (re-export)

TOO_LARGE = "image above the pixel limit"  # the ingest report's `kind` of such a skip

# Magic bytes, as tf.io.decode_image tells the formats apart.
JPEG_MAGIC, PNG_MAGIC, GIF_MAGIC, BMP_MAGIC = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF8", b"BM"
# JPEG start-of-frame markers (every coding process); C4 (DHT), C8 (JPG) and CC (DAC) are not frames.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def dimensions(data: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) the image's header claims, or None when it is no image TensorFlow reads or the header
    is cut short (the decoder refuses those itself). For a GIF: the largest of the screen and each frame,
    since the decoder allocates every frame (a 1x1 screen may hold a 65535x65535 frame)."""
    if data.startswith(JPEG_MAGIC):
        return _jpeg(data)
    if data.startswith(PNG_MAGIC):
        return (_be(data, 16, 4), _be(data, 20, 4)) if len(data) >= 24 and data[12:16] == b"IHDR" else None
    if data.startswith(GIF_MAGIC):
        return _gif(data)
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
    size = dimensions(data)
    if size is None or size[0] * size[1] <= max_pixels:
        return ""
    return too_large_reason(*size, max_pixels)


def too_large_reason(width: int, height: int, max_pixels: int) -> str:
    """The one wording of a refusal (the serving graph formats the same text)."""
    return (f"{TOO_LARGE}: {width}x{height} = {width * height} pixels, the limit is {max_pixels} "
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


def _gif(data: bytes) -> Optional[Tuple[int, int]]:
    """The logical screen, or the largest frame when one is larger (by area)."""
    if len(data) < 13:
        return None
    best = (_le(data, 6, 2), _le(data, 8, 2))
    i = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)  # after the global colour table
    while i < len(data):
        block = data[i]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension: label, then data sub-blocks
            i = _skip_sub_blocks(data, i + 2)
        elif block == 0x2C:  # image descriptor: x, y, width, height, flags
            if i + 10 > len(data):
                break
            frame = (_le(data, i + 5, 2), _le(data, i + 7, 2))
            if frame[0] * frame[1] > best[0] * best[1]:
                best = frame
            flags = data[i + 9]
            i += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
            i = _skip_sub_blocks(data, i + 1)  # after the LZW minimum code size
        else:
            break
    return best


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
