"""What both ExampleGens (image folders, TFRecords) share: the image check, and the ingest report they write.

Each ExampleGen's Beam steps write one JSON row per input (kept, or skipped with its reason) and the examples
per class of each output split under the report artifact's `rows/`; `summarize` and `read_counts` turn them
into report.json (`write_report`, with a copy that outlives a failed execution), and `check_summary` fails a
run that is left without two classes with images.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, Iterable, List, Optional

import apache_beam as beam
import tensorflow as tf

from tfx_image_finetune.data_contract import MAX_IMAGE_PIXELS
from tfx_image_finetune.image_header import pixel_limit_error
from tfx_image_finetune.components.image_folder_example_gen.layout import ImageIngestError

MAX_IMAGE_PIXELS_KEY = "max_image_pixels"  # both ExampleGens' execution parameter (data.max_image_pixels)
REPORT_FILE = "report.json"
ROWS_DIR_PROPERTY = "_ingest_rows_dir"  # handed from Do to the Beam steps: where the report rows go


def max_image_pixels(exec_properties: Dict[str, Any]) -> int:
    """The pixel limit of this execution (the default for a component built before the limit existed)."""
    return int(exec_properties.get(MAX_IMAGE_PIXELS_KEY) or MAX_IMAGE_PIXELS)


def decode_error(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> str:
    """'' if `data` decodes as an image TensorFlow can read (what Transform will do), else the reason.

    An image whose header claims more than `max_pixels` is refused before decoding (the exported model would
    refuse it too), so one small file cannot make this worker allocate gigabytes."""
    if not data:
        return "empty file"
    too_large = pixel_limit_error(data, max_pixels)
    if too_large:
        return too_large
    try:
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as err:
        return f"not a decodable image: {op_message(err)}"
    if image.shape[0] == 0 or image.shape[1] == 0:
        return "image has zero width or height"
    return ""



def op_message(err: tf.errors.OpError) -> str:
    """TF's error text without its '{{function_node ...}}' prefix and '[Op:...]' suffix."""
    text = err.message.splitlines()[0] if err.message else type(err).__name__
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)
    return re.sub(r"\s*\[Op:[^\]]*\]\s*$", "", text).strip() or type(err).__name__



def example_label(example: Any, label_key: str = "label") -> str:
    """The label of a tf.Example (or its serialized bytes) as text, '' when it has none."""
    if isinstance(example, bytes):
        example = tf.train.Example.FromString(example)
    feature = example.features.feature.get(label_key)
    if feature is None:
        return ""
    for kind in ("bytes_list", "int64_list", "float_list"):
        values = getattr(feature, kind).value
        if values:
            value = values[0]
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return ""


def count_per_split(example_splits: Dict[str, Any], rows_dir: str, label_key: str = "label") -> None:
    """Adds to the Beam pipeline: examples per class in each output split -> counts-<split>.jsonl rows."""
    for split, examples in example_splits.items():
        _ = (
            examples
            | f"Label[{split}]" >> beam.Map(example_label, label_key)
            | f"CountPerClass[{split}]" >> beam.combiners.Count.PerElement()
            | f"CountRow[{split}]" >> beam.Map(lambda kv, s=split: json.dumps({"split": s, "label": kv[0],
                                                                               "count": kv[1]}))
            | f"WriteCounts[{split}]" >> beam.io.WriteToText(os.path.join(rows_dir, f"counts-{split}"),
                                                             file_name_suffix=".jsonl")
        )


def read_report(report_uri: str) -> Optional[Dict[str, Any]]:
    """report.json of an ingest report artifact (local or gs:// folder), None when it has none."""
    path = os.path.join(report_uri, REPORT_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def read_counts(rows_dir: str) -> Dict[str, Dict[str, int]]:
    return read_per_split(rows_dir, "counts", "count")


def read_per_split(rows_dir: str, prefix: str, value_key: str) -> Dict[str, Dict[str, Any]]:
    """{split: {label: row[value_key]}} from the <prefix>-*.jsonl rows ({"split", "label", value_key}), sorted."""
    out: Dict[str, Dict[str, Any]] = {}
    for path in sorted(tf.io.gfile.glob(os.path.join(rows_dir, f"{prefix}-*"))):
        with tf.io.gfile.GFile(path) as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    out.setdefault(row["split"], {})[row["label"]] = row[value_key]
    return {split: dict(sorted(c.items())) for split, c in sorted(out.items())}


def rows_dir(report_artifact: Any) -> str:
    """Where the Beam steps write the report rows (removed once report.json is written)."""
    return os.path.join(report_artifact.uri, "rows")


def summary_of_rows(rows: str) -> Dict[str, Any]:
    """The report's content from the rows: files kept and skipped (with reasons), examples per split and class."""
    summary = summarize(read_rows(rows))
    summary["examples_per_split"] = read_counts(rows)
    return summary


def write_report(report_artifact: Any, summary: Dict[str, Any]) -> str:
    """report.json in the artifact, and a copy that outlives a failed execution (TFX removes its outputs); the
    rows are removed and the counts recorded on the artifact. Returns the copy's path."""
    path = os.path.join(report_artifact.uri, REPORT_FILE)
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(summary, f, indent=2)
    kept = kept_report_path(report_artifact.uri)
    tf.io.gfile.makedirs(os.path.dirname(kept))
    tf.io.gfile.copy(path, kept, overwrite=True)
    if tf.io.gfile.exists(rows_dir(report_artifact)):
        tf.io.gfile.rmtree(rows_dir(report_artifact))
    report_artifact.set_int_custom_property("valid_images", summary["valid_images"])
    report_artifact.set_int_custom_property("skipped_files", summary["skipped_files"])
    return kept


def kept_report_path(report_uri: str) -> str:
    """<pipeline_root>/<component>/ingest_reports/<execution id>.json, beside the artifact folders."""
    uri = report_uri.rstrip("/")
    component_dir = os.path.dirname(os.path.dirname(uri))
    return os.path.join(component_dir, "ingest_reports", f"{os.path.basename(uri)}.json")


def read_rows(rows_dir: str) -> Iterable[Dict[str, Any]]:
    for path in sorted(tf.io.gfile.glob(os.path.join(rows_dir, "rows-*"))):
        with tf.io.gfile.GFile(path) as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)


def summarize(rows: Iterable[Dict[str, Any]]) -> Dict[str, Any]:
    counts: Dict[str, Dict[str, int]] = {}
    skipped = []
    nested = 0
    for row in rows:
        if row["label"]:
            per_class = counts.setdefault(row["split_dir"] or ".", {})
            per_class.setdefault(row["label"], 0)
            if row["ok"]:
                per_class[row["label"]] += 1
                nested += bool(row.get("nested"))
        if not row["ok"]:
            skipped.append({"path": row["path"], "kind": row.get("kind", row["reason"]), "reason": row["reason"],
                            "split_dir": row["split_dir"] or "."})
    skipped.sort(key=lambda r: r["path"])
    by_kind: Dict[str, Dict[str, int]] = {}
    for r in skipped:
        per_kind = by_kind.setdefault(r["split_dir"], {})
        per_kind[r["kind"]] = per_kind.get(r["kind"], 0) + 1
    return {
        "valid_images": sum(sum(c.values()) for c in counts.values()),
        "skipped_files": len(skipped),
        "nested_images": nested,
        "valid_per_class": {s: dict(sorted(c.items())) for s, c in sorted(counts.items())},
        "skipped_per_reason": {s: dict(sorted(k.items())) for s, k in sorted(by_kind.items())},
        "skipped": skipped,
    }



def check_summary(summary: Dict[str, Any], input_base: str, split_dirs: List[str], report_path: str = "") -> None:
    """After reading: every class still has a valid image, and two classes remain."""
    skipped_note = ""
    if summary["skipped"]:
        listed = "; ".join(f"{r['path']}: {r['reason']}" for r in summary["skipped"][:10])
        skipped_note = f" Skipped {summary['skipped_files']} file(s): {listed}"
    if report_path:
        skipped_note += f" (report: {report_path})"
    if summary["valid_images"] == 0:
        raise ImageIngestError(f"no valid image in {input_base!r}.{skipped_note}")
    for split_dir in split_dirs:
        per_class = summary["valid_per_class"].get(split_dir or ".", {})
        empty = sorted(name for name, count in per_class.items() if count == 0)
        if empty:
            raise ImageIngestError(
                f"class(es) {empty} in {os.path.join(input_base, split_dir)!r} have no valid image.{skipped_note}"
            )
        if sum(1 for count in per_class.values() if count) < 2:
            raise ImageIngestError(f"fewer than two classes with valid images in {input_base!r}.{skipped_note}")
