"""Image data health: per split and class, what the images are (width, height, aspect ratio, file format, colour
mode) and how they look (brightness, contrast), computed in ExampleGen's own Beam pass over its output examples.

Why here and not in StatisticsGen: TFDV sees the image feature as bytes; its image stats generator (with an
image_domain in the schema) gives per split only the formats and the largest width and height, never per class,
and nothing of brightness or contrast. ExampleGen already holds every image's bytes, split and label, so one
more combine per split costs a decode of a small draft (JPEG decodes at 1/2..1/8 scale) and no second read.
The result goes into the ingest report (`image_stats`), which the run report plots and drift compares.
"""

from __future__ import annotations

import io
import json
import math
import os
from typing import Any, Dict, List

import apache_beam as beam

PROPERTIES = ("width", "height", "aspect", "brightness", "contrast")
# Histogram bin edges per property (the last bin is open); fixed, so that two runs' histograms compare bin by bin.
EDGES: Dict[str, List[float]] = {
    "width": [0, 32, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 4096],
    "height": [0, 32, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 4096],
    "aspect": [0, 0.5, 0.67, 0.8, 0.95, 1.05, 1.25, 1.5, 2.0, 3.0],  # width / height
    "brightness": [16 * i for i in range(16)],  # mean luma, 0..255
    "contrast": [8 * i for i in range(16)],  # luma's standard deviation (RMS contrast), 0..~128
}
DRAFT_SIDE = 64  # brightness and contrast from a draft of about this size: plenty for a mean and a deviation
COLOUR_MODES = {"1": "gray", "L": "gray", "LA": "gray", "I": "gray", "I;16": "gray", "F": "gray",
                "RGB": "RGB", "RGBA": "RGBA", "CMYK": "CMYK", "P": "palette", "PA": "palette", "YCbCr": "RGB"}


def image_properties(data: bytes) -> Dict[str, Any]:
    """Format, colour mode, width, height, aspect (width / height), brightness (mean luma) and contrast (its
    standard deviation) of one encoded image; ExampleGen has already checked that it decodes within the limit."""
    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        fmt, mode, (width, height) = image.format or "unknown", image.mode, image.size
        image.draft("L", (DRAFT_SIDE, DRAFT_SIDE))
        luma = np.asarray(image.convert("L"), dtype=np.float64)
    return {"format": fmt, "colour": COLOUR_MODES.get(mode, mode), "width": width, "height": height,
            "aspect": width / height, "brightness": float(luma.mean()), "contrast": float(luma.std())}


def _bin(value: float, edges: List[float]) -> int:
    return max(i for i, edge in enumerate(edges) if value >= edge)


class SummarizeImages(beam.CombineFn):
    """image_properties() rows -> {count, format: {name: n}, colour: {mode: n}, mean: {...}, std: {...},
    histogram: {property: [n per bin of EDGES]}}."""

    def create_accumulator(self):
        return {"count": 0, "format": {}, "colour": {}, "sum": dict.fromkeys(PROPERTIES, 0.0),
                "squares": dict.fromkeys(PROPERTIES, 0.0),
                "histogram": {p: [0] * len(EDGES[p]) for p in PROPERTIES}}

    def add_input(self, acc, row):
        acc["count"] += 1
        for key in ("format", "colour"):
            acc[key][row[key]] = acc[key].get(row[key], 0) + 1
        for p in PROPERTIES:
            acc["sum"][p] += row[p]
            acc["squares"][p] += row[p] ** 2
            acc["histogram"][p][_bin(row[p], EDGES[p])] += 1
        return acc

    def merge_accumulators(self, accumulators):
        out = self.create_accumulator()
        for acc in accumulators:
            out["count"] += acc["count"]
            for key in ("format", "colour"):
                for name, n in acc[key].items():
                    out[key][name] = out[key].get(name, 0) + n
            for p in PROPERTIES:
                out["sum"][p] += acc["sum"][p]
                out["squares"][p] += acc["squares"][p]
                out["histogram"][p] = [a + b for a, b in zip(out["histogram"][p], acc["histogram"][p])]
        return out

    def extract_output(self, acc):
        n = max(acc["count"], 1)
        mean = {p: acc["sum"][p] / n for p in PROPERTIES}
        std = {p: math.sqrt(max(acc["squares"][p] / n - mean[p] ** 2, 0.0)) for p in PROPERTIES}
        return {"count": acc["count"], "format": dict(sorted(acc["format"].items())),
                "colour": dict(sorted(acc["colour"].items())), "mean": mean, "std": std,
                "histogram": acc["histogram"]}


def stats_per_split(example_splits: Dict[str, Any], rows_dir: str, image_key: str = "image",
                    label_key: str = "label") -> None:
    """Adds to the Beam pipeline: per output split and class, SummarizeImages -> image-stats-<split>.jsonl."""
    from tfx_image_finetune.components.ingest_report import example_label

    import tensorflow as tf

    def keyed(example):
        if isinstance(example, bytes):
            example = tf.train.Example.FromString(example)
        return example_label(example, label_key), image_properties(
            example.features.feature[image_key].bytes_list.value[0])

    for split, examples in example_splits.items():
        _ = (
            examples
            | f"ImageProperties[{split}]" >> beam.Map(keyed)
            | f"SummarizeImages[{split}]" >> beam.CombinePerKey(SummarizeImages())
            | f"ImageStatsRow[{split}]" >> beam.MapTuple(
                lambda label, stats, s=split: json.dumps({"split": s, "label": label, "stats": stats}))
            | f"WriteImageStats[{split}]" >> beam.io.WriteToText(os.path.join(rows_dir, f"image-stats-{split}"),
                                                                 file_name_suffix=".jsonl")
        )


def read_stats(rows_dir: str) -> Dict[str, Dict[str, Any]]:
    """{split: {class: summary}} from the rows stats_per_split wrote."""
    from tfx_image_finetune.components.ingest_report import read_per_split

    return read_per_split(rows_dir, "image-stats", "stats")
