"""Executor: read each image file, prove it decodes, emit a tf.Example; skip and report the rest.

Runs in Beam (the reading and decoding happen in workers), so the same code scales out on Dataflow.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any, Dict, Iterable, List, Optional

import apache_beam as beam
import tensorflow as tf
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.utils import proto_utils

from components.image_folder_example_gen.layout import IMAGE_EXTENSIONS, class_folders
from pipeline.configs import SELECTION_SPLIT, TRAIN_SPLIT

INGEST_REPORT_KEY = "ingest_report"
SELECTION_PERCENT_KEY = "selection_percent"
REPORT_FILE = "report.json"
_ROWS_DIR_PROPERTY = "_ingest_rows_dir"  # handed from Do to the per-split PTransform


class ImageIngestError(ValueError):
    """The image folder cannot make a training set; the message says which folder or class."""


def _bytes_feature(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def decode_error(data: bytes) -> str:
    """'' if `data` decodes as an image TensorFlow can read (what Transform will do), else the reason."""
    if not data:
        return "empty file"
    try:
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as err:
        return f"not a decodable image: {err.message.splitlines()[0] if err.message else type(err).__name__}"
    if image.shape[0] == 0 or image.shape[1] == 0:
        return "image has zero width or height"
    return ""


def in_selection(relative_path: str, percent: int) -> bool:
    """Whether a file of train/ belongs to the selection split: a stable hash of its path, like TFX's splits."""
    return int(hashlib.sha256(relative_path.encode("utf-8")).hexdigest(), 16) % 100 < percent


class _ReadImage(beam.DoFn):
    """path -> tf.Example (main output) and one JSON report row per file (tagged output 'report').

    `selection`: (percent, wanted) keeps only the files whose in_selection(...) is `wanted`, before reading.
    """

    def __init__(self, input_base: str, selection: Optional[tuple] = None):
        self._input_base = input_base
        self._selection = selection

    def process(self, path: str):
        relative = path[len(self._input_base.rstrip("/")) + 1:].replace(os.sep, "/")
        if self._selection is not None and in_selection(relative, self._selection[0]) != self._selection[1]:
            return []
        parts = relative.split("/")
        label = parts[-2]
        split_dir = parts[0] if len(parts) > 2 else ""
        row = {"path": relative, "label": label, "split_dir": split_dir}
        if tf.io.gfile.isdir(path):
            return []  # a nested folder is not a file of the class
        extension = os.path.splitext(path)[1].lower()
        if extension not in IMAGE_EXTENSIONS:
            reason = f"unsupported file type {extension or '(no extension)'!r}"
        else:
            try:
                with tf.io.gfile.GFile(path, "rb") as f:
                    data = f.read()
                reason = decode_error(data)
            except (OSError, tf.errors.OpError) as err:
                reason = f"unreadable: {err}"
        if reason:
            return [beam.pvalue.TaggedOutput("report", json.dumps({**row, "ok": False, "reason": reason}))]
        example = tf.train.Example(features=tf.train.Features(feature={
            "image": _bytes_feature(data),
            "label": _bytes_feature(label.encode("utf-8")),
            "filename": _bytes_feature(relative.encode("utf-8")),
        }))
        return [example, beam.pvalue.TaggedOutput("report", json.dumps({**row, "ok": True}))]


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _ImageFolderToExample(pipeline: beam.Pipeline, exec_properties: Dict[str, Any], split_pattern: str,
                          selection: Optional[tuple] = None, tag: Optional[str] = None):
    input_base = exec_properties["input_base"]
    files = sorted(tf.io.gfile.glob(os.path.join(input_base, split_pattern)))
    tag = tag or re.sub(r"[^A-Za-z0-9]+", "_", split_pattern.split("/")[0]).strip("_") or "all"
    results = (
        pipeline
        | "ListFiles" >> beam.Create(files)
        | "Reshuffle" >> beam.Reshuffle()
        | "ReadAndCheck" >> beam.ParDo(_ReadImage(input_base, selection)).with_outputs("report", main="examples")
    )
    _ = results.report | "WriteReportRows" >> beam.io.WriteToText(
        os.path.join(exec_properties[_ROWS_DIR_PROPERTY], f"rows-{tag}"), file_name_suffix=".jsonl"
    )
    return results.examples


class Executor(BaseExampleGenExecutor):
    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _ImageFolderToExample

    def GenerateExamplesByBeam(self, pipeline, exec_properties):
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
            selection = (percent, name == SELECTION_SPLIT) if shared and name in (TRAIN_SPLIT, SELECTION_SPLIT) else None
            splits[name] = pipeline | f"InputToRecord[{name}]" >> _ImageFolderToExample(
                exec_properties, pattern, selection, tag=name)
        return splits

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        report = artifact_utils.get_single_instance(output_dict[INGEST_REPORT_KEY])
        rows_dir = os.path.join(report.uri, "rows")
        split_dirs = _input_split_dirs(exec_properties)
        _check_layout(exec_properties["input_base"], split_dirs)
        super().Do(input_dict, output_dict, {**exec_properties, _ROWS_DIR_PROPERTY: rows_dir})
        summary = _summarize(_read_rows(rows_dir))
        with tf.io.gfile.GFile(os.path.join(report.uri, REPORT_FILE), "w") as f:
            json.dump(summary, f, indent=2)
        tf.io.gfile.rmtree(rows_dir)
        report.set_int_custom_property("valid_images", summary["valid_images"])
        report.set_int_custom_property("skipped_files", summary["skipped_files"])
        _check_summary(summary, exec_properties["input_base"], split_dirs)
        _check_splits_not_empty(artifact_utils.get_single_instance(output_dict["examples"]))


def _input_split_dirs(exec_properties: Dict[str, Any]) -> List[str]:
    """The folders holding class folders: '' for an unsplit root, else each given split's folder."""
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(exec_properties["input_config"], input_config)
    dirs = [split.pattern.split("/")[0] if split.pattern.count("/") == 2 else "" for split in input_config.splits]
    return list(dict.fromkeys(dirs))


def _check_layout(input_base: str, split_dirs: List[str]) -> None:
    """Before any reading: the folder exists, has two or more classes, no empty class, same classes per split."""
    class_sets = {}
    for split_dir in split_dirs:
        root = os.path.join(input_base, split_dir) if split_dir else input_base
        classes = class_folders(root)
        if len(classes) < 2:
            raise ImageIngestError(
                f"{root!r} must hold one folder per class (<root>/<class>/<image>); found {len(classes)} "
                f"class folder(s) {classes}"
            )
        for name in classes:
            if not tf.io.gfile.listdir(os.path.join(root, name)):
                raise ImageIngestError(f"class {name!r} is empty: no file in {os.path.join(root, name)!r}")
        class_sets[split_dir or "."] = set(classes)
    reference = class_sets.get("train", next(iter(class_sets.values())))
    for split_dir, classes in class_sets.items():
        if classes != reference:
            raise ImageIngestError(
                f"the class folders differ between splits: {split_dir!r} has {sorted(classes)}, "
                f"train has {sorted(reference)}"
            )


def _read_rows(rows_dir: str) -> Iterable[Dict[str, Any]]:
    for path in sorted(tf.io.gfile.glob(os.path.join(rows_dir, "rows-*"))):
        with tf.io.gfile.GFile(path) as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)


def _summarize(rows: Iterable[Dict[str, Any]]) -> Dict[str, Any]:
    counts: Dict[str, Dict[str, int]] = {}
    skipped = []
    for row in rows:
        per_class = counts.setdefault(row["split_dir"] or ".", {})
        per_class.setdefault(row["label"], 0)
        if row["ok"]:
            per_class[row["label"]] += 1
        else:
            skipped.append({"path": row["path"], "reason": row["reason"]})
    skipped.sort(key=lambda r: r["path"])
    return {
        "valid_images": sum(sum(c.values()) for c in counts.values()),
        "skipped_files": len(skipped),
        "valid_per_class": {s: dict(sorted(c.items())) for s, c in sorted(counts.items())},
        "skipped": skipped,
    }


def _check_splits_not_empty(examples) -> None:
    """Every split has an example: an empty test split would leave the Evaluator nothing to judge (NaN)."""
    for split in artifact_utils.decode_split_names(examples.split_names):
        files = tf.io.gfile.glob(os.path.join(artifact_utils.get_split_uri([examples], split), "*"))
        if not files or not any(True for _ in tf.data.TFRecordDataset(files, compression_type="GZIP").take(1)):
            raise ImageIngestError(
                f"the {split!r} split has no image: too few images for the split percentages (--split) "
                "or the given split folders; add images or change --split")


def _check_summary(summary: Dict[str, Any], input_base: str, split_dirs: List[str]) -> None:
    """After reading: every class still has a valid image, and two classes remain."""
    skipped_note = ""
    if summary["skipped"]:
        listed = "; ".join(f"{r['path']}: {r['reason']}" for r in summary["skipped"][:10])
        skipped_note = f" Skipped {summary['skipped_files']} file(s): {listed}"
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
