"""Executor: read each image file, prove it decodes, emit a tf.Example; skip and report the rest.

Runs in Beam (the reading and decoding happen in workers), so the same code scales out on Dataflow.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any, Dict, Iterable, List, Optional, Tuple

import apache_beam as beam
import tensorflow as tf
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.utils import proto_utils

from tfx_image_finetune.components.image_folder_example_gen import duplicates, image_stats, layout
from tfx_image_finetune.components.image_folder_example_gen.layout import IMAGE_EXTENSIONS, ImageIngestError  # noqa: F401 (re-export)
from tfx_image_finetune.data_contract import (FILENAME_FEATURE, INGEST_REPORT_KEY, MAX_IMAGE_PIXELS, SELECTION_SPLIT,
                                             TRAIN_SPLIT)
from tfx_image_finetune.image_header import pixel_limit_error

SELECTION_PERCENT_KEY = "selection_percent"
MAX_IMAGE_PIXELS_KEY = "max_image_pixels"  # both ExampleGens' execution parameter (data.max_image_pixels)
REPORT_FILE = "report.json"
_ROWS_DIR_PROPERTY = "_ingest_rows_dir"  # handed from Do to the per-split PTransform


def _bytes_feature(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


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
        return f"not a decodable image: {_op_message(err)}"
    if image.shape[0] == 0 or image.shape[1] == 0:
        return "image has zero width or height"
    return ""


def _row(input_base: str, split_dir: str, path: str) -> Dict[str, Any]:
    """The report row of one file: its path relative to the root, its class folder and split folder."""
    relative = layout.relative_path(input_base, path)
    inner = relative.split("/")[1:] if split_dir else relative.split("/")
    label = inner[0] if len(inner) > 1 else ""
    row = {"path": relative, "label": label, "split_dir": split_dir}
    if len(inner) > 2:
        row["nested"] = True  # in a sub-folder of its class folder: ingested under the class
    return row


def _op_message(err: tf.errors.OpError) -> str:
    """TF's error text without its '{{function_node ...}}' prefix and '[Op:...]' suffix."""
    text = err.message.splitlines()[0] if err.message else type(err).__name__
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)
    return re.sub(r"\s*\[Op:[^\]]*\]\s*$", "", text).strip() or type(err).__name__


class _ReadImage(beam.DoFn):
    """path -> tf.Example (main output) and one JSON report row per file (tagged output 'report')."""

    def __init__(self, input_base: str, split_dir: str, max_pixels: int = MAX_IMAGE_PIXELS):
        self._input_base = input_base
        self._split_dir = split_dir
        self._max_pixels = max_pixels

    def process(self, path: str):
        row = _row(self._input_base, self._split_dir, path)
        extension = os.path.splitext(path)[1].lower()
        if extension not in IMAGE_EXTENSIONS:
            kind = "unsupported file type"
            reason = f"{kind} {extension or '(no extension)'!r}"
        else:
            try:
                with tf.io.gfile.GFile(path, "rb") as f:
                    data = f.read()
                reason = decode_error(data, self._max_pixels)
                kind = reason.split(":")[0]
            except (OSError, tf.errors.OpError) as err:
                kind = "unreadable"
                reason = f"unreadable: {err}"
        if reason:
            return [beam.pvalue.TaggedOutput("report", json.dumps({**row, "ok": False, "kind": kind,
                                                                   "reason": reason}))]
        example = tf.train.Example(features=tf.train.Features(feature={
            "image": _bytes_feature(data),
            "label": _bytes_feature(row["label"].encode("utf-8")),
            FILENAME_FEATURE: _bytes_feature(row["path"].encode("utf-8")),
        }))
        return [example, beam.pvalue.TaggedOutput("report", json.dumps({**row, "ok": True}))]


def skip_row(input_base: str, split_dir: str, path: str, kind: str) -> str:
    return json.dumps({**_row(input_base, split_dir, path), "ok": False, "kind": kind, "reason": kind})


def in_selection(relative_path: str, percent: int) -> bool:
    """Whether a file of train/ belongs to the selection split: a stable hash of its path, like TFX's splits."""
    return int(hashlib.sha256(relative_path.encode("utf-8")).hexdigest(), 16) % 100 < percent


def _split_dir(split_pattern: str) -> str:
    return split_pattern.split("/")[0] if split_pattern.count("/") == 2 else ""


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _ImageFolderToExample(pipeline: beam.Pipeline, exec_properties: Dict[str, Any], split_pattern: str,
                          selection: Optional[Tuple[int, bool]] = None, tag: Optional[str] = None):
    """`selection` (percent, wanted): train/ shared by train and selection, each keeping its files by hash
    (in_selection(...) == wanted); the folder's skips are listed once, with the train side."""
    input_base = exec_properties["input_base"]
    split_dir = _split_dir(split_pattern)
    files, skipped = layout.scan_split(input_base, split_dir)
    if selection is not None:
        percent, wanted = selection
        files = [f for f in files if in_selection(layout.relative_path(input_base, f), percent) == wanted]
        skipped = [] if wanted else skipped
    tag = tag or re.sub(r"[^A-Za-z0-9]+", "_", split_dir).strip("_") or "all"
    results = (
        pipeline
        | "ListFiles" >> beam.Create(files)
        | "Reshuffle" >> beam.Reshuffle()
        | "ReadAndCheck" >> beam.ParDo(_ReadImage(input_base, split_dir, max_image_pixels(exec_properties)))
        .with_outputs("report", main="examples")
    )
    listed = pipeline | "ListedSkips" >> beam.Create(
        [skip_row(input_base, split_dir, path, kind) for path, kind in skipped])
    _ = (results.report, listed) | "AllRows" >> beam.Flatten() | "WriteReportRows" >> beam.io.WriteToText(
        os.path.join(exec_properties[_ROWS_DIR_PROPERTY], f"rows-{tag}"), file_name_suffix=".jsonl"
    )
    return results.examples


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


def write_report(report_artifact: Any, summary: Dict[str, Any]) -> str:
    """report.json in the artifact, and a copy that outlives a failed execution (TFX removes its outputs)."""
    path = os.path.join(report_artifact.uri, REPORT_FILE)
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(summary, f, indent=2)
    kept = kept_report_path(report_artifact.uri)
    tf.io.gfile.makedirs(os.path.dirname(kept))
    tf.io.gfile.copy(path, kept, overwrite=True)
    return kept


def kept_report_path(report_uri: str) -> str:
    """<pipeline_root>/<component>/ingest_reports/<execution id>.json, beside the artifact folders."""
    uri = report_uri.rstrip("/")
    component_dir = os.path.dirname(os.path.dirname(uri))
    return os.path.join(component_dir, "ingest_reports", f"{os.path.basename(uri)}.json")


class Executor(BaseExampleGenExecutor):
    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _ImageFolderToExample

    def GenerateExamplesByBeam(self, pipeline, exec_properties):
        example_splits = self._example_splits(pipeline, exec_properties)
        # Duplicates: copies of training images kept out of selection and test (duplicates.py).
        example_splits = duplicates.keep_out_copies(example_splits, exec_properties[_ROWS_DIR_PROPERTY])
        count_per_split(example_splits, exec_properties[_ROWS_DIR_PROPERTY])
        image_stats.stats_per_split(example_splits, exec_properties[_ROWS_DIR_PROPERTY])  # image data health
        return example_splits

    def _example_splits(self, pipeline, exec_properties):
        """One PCollection per given split folder; train and selection share train/ (by hash) if they must."""
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties["input_config"], input_config)
        if len(input_config.splits) == 1:  # an unsplit root: TFX's own hash split
            return super().GenerateExamplesByBeam(pipeline, exec_properties)
        patterns = {split.name: split.pattern for split in input_config.splits}
        shared = TRAIN_SPLIT in patterns and patterns.get(SELECTION_SPLIT) == patterns[TRAIN_SPLIT]
        percent = int(exec_properties.get(SELECTION_PERCENT_KEY) or 0)
        if shared and not 0 < percent < 100:
            raise ImageIngestError(f"{SELECTION_PERCENT_KEY} must be in 1..99 to carve selection out of train/, "
                                   f"got {percent}")
        splits = {}
        for name, pattern in patterns.items():
            carve = shared and name in (TRAIN_SPLIT, SELECTION_SPLIT)
            splits[name] = pipeline | f"InputToRecord[{name}]" >> _ImageFolderToExample(
                exec_properties, pattern, (percent, name == SELECTION_SPLIT) if carve else None, tag=name)
        return splits

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        report = artifact_utils.get_single_instance(output_dict[INGEST_REPORT_KEY])
        rows_dir = os.path.join(report.uri, "rows")
        input_base = exec_properties["input_base"]
        split_dirs = _input_split_dirs(exec_properties)
        layout.check_layout(input_base, split_dirs)
        extras = layout.scan_root_extras(input_base, split_dirs)
        if extras:
            tf.io.gfile.makedirs(rows_dir)
            with tf.io.gfile.GFile(os.path.join(rows_dir, "rows-root.jsonl"), "w") as f:
                f.write("".join(skip_row(input_base, "", path, kind) + "\n" for path, kind in extras))
        super().Do(input_dict, output_dict, {**exec_properties, _ROWS_DIR_PROPERTY: rows_dir})
        summary = _summarize(_read_rows(rows_dir))
        summary["examples_per_split"] = read_counts(rows_dir)
        summary["duplicates"] = duplicates.read(rows_dir)  # Duplicates (duplicates.py)
        summary["image_stats"] = image_stats.read_stats(rows_dir)
        kept = write_report(report, summary)
        tf.io.gfile.rmtree(rows_dir)
        report.set_int_custom_property("valid_images", summary["valid_images"])
        report.set_int_custom_property("skipped_files", summary["skipped_files"])
        _check_summary(summary, input_base, split_dirs, kept)
        _check_splits_not_empty(summary, artifact_utils.get_single_instance(output_dict["examples"]))


def _input_split_dirs(exec_properties: Dict[str, Any]) -> List[str]:
    """The folders holding class folders: '' for an unsplit root, else each given split's folder."""
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(exec_properties["input_config"], input_config)
    return list(dict.fromkeys(_split_dir(split.pattern) for split in input_config.splits))


def _read_rows(rows_dir: str) -> Iterable[Dict[str, Any]]:
    for path in sorted(tf.io.gfile.glob(os.path.join(rows_dir, "rows-*"))):
        with tf.io.gfile.GFile(path) as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)


def _summarize(rows: Iterable[Dict[str, Any]]) -> Dict[str, Any]:
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


def _check_splits_not_empty(summary: Dict[str, Any], examples) -> None:
    """Every split has an example: an empty test split would leave the Evaluator nothing to judge (NaN)."""
    for split in artifact_utils.decode_split_names(examples.split_names):
        if not sum(summary["examples_per_split"].get(split, {}).values()):
            kept_out = ((summary.get("duplicates") or {}).get("kept_out_per_split") or {}).get(split)
            copies = f" ({kept_out} copies of training images kept out of it)" if kept_out else ""
            raise ImageIngestError(
                f"the {split!r} split has no image{copies}: too few images for the split percentages (--split) "
                "or the given split folders; add images or change --split")


def _check_summary(summary: Dict[str, Any], input_base: str, split_dirs: List[str], report_path: str = "") -> None:
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
