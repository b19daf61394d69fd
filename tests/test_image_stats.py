"""Image data health in the ingest report: per split and class, sizes, formats, colour modes, brightness, contrast
(components/image_folder_example_gen/image_stats.py), computed by the real ExampleGen executor in Beam."""

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

from tfx_image_finetune.components.image_folder_example_gen.image_stats import EDGES, image_properties
from tfx_image_finetune.report.render import render
from tests.helpers import report_data, run_example_gen


def _encoded(mode, size, fmt, value, noise=0, seed=0):
    """An image of one value, with uniform noise of +-`noise` (every file differs: no duplicates kept out)."""
    image = Image.new(mode, size, value)
    if noise:
        pixels = np.asarray(image, np.int16)
        pixels = pixels + np.random.default_rng(seed).integers(-noise, noise + 1, pixels.shape)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode)
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


def test_properties_of_one_image():
    half = np.zeros((20, 40), np.uint8)
    half[:, 20:] = 255
    buf = io.BytesIO()
    Image.fromarray(half).save(buf, format="PNG")
    found = image_properties(buf.getvalue())
    assert {k: found[k] for k in ("format", "colour", "width", "height", "aspect")} == {
        "format": "PNG", "colour": "gray", "width": 40, "height": 20, "aspect": 2.0}
    assert found["brightness"] == pytest.approx(127.5) and found["contrast"] == pytest.approx(127.5)
    cmyk = image_properties(_encoded("CMYK", (64, 48), "JPEG", (0, 0, 0, 0)))  # no ink: white
    assert (cmyk["format"], cmyk["colour"]) == ("JPEG", "CMYK") and cmyk["brightness"] > 250 and cmyk["contrast"] < 1
    assert image_properties(_encoded("RGBA", (8, 8), "PNG", (0, 0, 0, 0)))["colour"] == "RGBA"


def test_the_ingest_report_has_them_per_split_and_class(tmp_path):
    root = tmp_path / "data"
    kinds = {"dark": ("L", (40, 20), "PNG", 50), "bright": ("CMYK", (30, 60), "JPEG", (8, 8, 8, 8))}
    counts = {"train": 6, "validation": 3, "test": 2}
    for split, n in counts.items():
        for name, (mode, size, fmt, value) in kinds.items():
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                seed = 100 * list(counts).index(split) + 10 * list(kinds).index(name) + i
                (root / split / name / f"{i}.{fmt.lower()}").write_bytes(_encoded(mode, size, fmt, value, 8, seed))
    (root / "train" / "bright" / "rgba.png").write_bytes(_encoded("RGBA", (30, 60), "PNG", (250, 250, 250, 255), 4))
    splits, report = run_example_gen(str(root), str(tmp_path / "out"), selection_percent=25)
    stats = report["image_stats"]
    assert set(stats) == set(splits) == {"train", "selection", "test"}
    for split, rows in splits.items():  # every example of the split, counted under its class
        assert {c: s["count"] for c, s in stats[split].items()} == {
            c: sum(1 for _, label in rows if label == c) for c in kinds}
    test = stats["test"]
    assert test["dark"]["format"] == {"PNG": 2} and test["dark"]["colour"] == {"gray": 2}
    assert test["dark"]["mean"]["width"] == 40 and test["dark"]["mean"]["aspect"] == 2.0
    assert test["dark"]["mean"]["brightness"] == pytest.approx(50, abs=1) and test["dark"]["std"]["brightness"] < 1
    assert 3 < test["dark"]["mean"]["contrast"] < 6  # uniform noise of +-8: a deviation of ~4.9
    assert test["bright"]["colour"] == {"CMYK": 2} and test["bright"]["mean"]["aspect"] == 0.5
    assert test["bright"]["mean"]["brightness"] > 230 and test["bright"]["mean"]["contrast"] < 8
    assert stats["train"]["bright"]["colour"] == {"CMYK": 6, "RGBA": 1}  # and the one RGBA file
    histogram = test["dark"]["histogram"]
    assert {p: len(h) for p, h in histogram.items()} == {p: len(e) for p, e in EDGES.items()}
    assert histogram["brightness"][50 // 16] == 2 and sum(histogram["brightness"]) == 2
    # The report's image health section: a plot that decodes, a row per split and class with its numbers.
    page = render({**report_data(2), "ingest": report})
    section = re.search(r'<section id="image-health">(.*?)</section>', page, re.S).group(1)
    plot = re.search(r'<img [^>]*src="data:image/png;base64,([^"]+)"', section).group(1)
    assert min(Image.open(io.BytesIO(base64.b64decode(plot))).size) > 100
    rows = re.findall(r'data-health-split="(\w+)" data-health-class="(\w+)" data-health-brightness="([^"]+)"', section)
    assert {(split, cls) for split, cls, _ in rows} == {(s, c) for s in stats for c in kinds}
    assert all((float(b) < 60) == (cls == "dark") for _, cls, b in rows)
