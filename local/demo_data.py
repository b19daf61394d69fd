"""A deterministic, learnable two-class image folder for `make demo` and the tests.

"sunny" images are warm-toned with a bright disc; "night" images are cool-toned with a dark square. Both have
noise, random positions and sizes, so the classes are easy but not constant. Same seed, same bytes.
"""

from __future__ import annotations

import os
import random
from typing import Dict

CLASSES = ("night", "sunny")


def _draw(kind: str, rng: random.Random, size: int):
    from PIL import Image, ImageDraw, ImageFilter

    if kind == "sunny":
        background = (rng.randint(170, 255), rng.randint(110, 200), rng.randint(20, 90))
        shape_color = (255, rng.randint(220, 255), rng.randint(120, 200))
    else:
        background = (rng.randint(0, 50), rng.randint(10, 70), rng.randint(70, 160))
        shape_color = (rng.randint(0, 40), rng.randint(0, 40), rng.randint(20, 60))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    radius = rng.randint(size // 8, size // 3)
    cx, cy = rng.randint(radius, size - radius), rng.randint(radius, size - radius)
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    (draw.ellipse if kind == "sunny" else draw.rectangle)(box, fill=shape_color)
    for _ in range(size * 2):  # speckle noise
        x, y = rng.randrange(size), rng.randrange(size)
        v = rng.randint(0, 255)
        draw.point((x, y), fill=(v, v, v))
    return image.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0.0, 1.0)))


def generate(root: str, per_class: int = 120, size: int = 96, seed: int = 0) -> Dict[str, int]:
    """Write <root>/<class>/<class>_<i>.jpg; returns {class: count}. Existing files are kept (same seed, same bytes)."""
    rng = random.Random(seed)
    for kind in CLASSES:
        os.makedirs(os.path.join(root, kind), exist_ok=True)
        for i in range(per_class):
            image = _draw(kind, rng, size)
            path = os.path.join(root, kind, f"{kind}_{i:04d}.jpg")
            if not os.path.exists(path):
                image.save(path, format="JPEG", quality=90)
    return {kind: per_class for kind in CLASSES}
