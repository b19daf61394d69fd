"""Executor: read each image file, prove it decodes, emit a tf.Example; skip and report the rest.

Runs in Beam (the reading and decoding happen in workers), so the same code scales out on Dataflow.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any, Dict, List, Optional, Tuple

import apache_beam as beam
import tensorflow as tf
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.utils import proto_utils

from tfx_image_finetune.components.image_folder_example_gen import duplicates, image_stats, layout
from tfx_image_finetune.components import ingest_report
from tfx_image_finetune.components.ingest_report import (ROWS_DIR_PROPERTY, count_per_split, decode_error,
                                                         max_image_pixels)
from tfx_image_finetune.components.image_folder_example_gen.layout import IMAGE_EXTENSIONS, ImageIngestError  # noqa: F401 (re-export)
from tfx_image_finetune.data_contract import (FILENAME_FEATURE, INGEST_REPORT_KEY, MAX_IMAGE_PIXELS, SELECTION_SPLIT,
                                             TRAIN_SPLIT)

SELECTION_PERCENT_KEY = "selection_percent"


def _bytes_feature(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _row(input_base: str, split_dir: str, path: str) -> Dict[str, Any]:
    """The report row of one file: its path relative to the root, its class folder and split folder."""
    relative = layout.relative_path(input_base, path)
    inner = relative.split("/")[1:] if split_dir else relative.split("/")
    label = inner[0] if len(inner) > 1 else ""
    row = {"path": relative, "label": label, "split_dir": split_dir}
    if len(inner) > 2:
        row["nested"] = True  # in a sub-folder of its class folder: ingested under the class
    return row


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
        os.path.join(exec_properties[ROWS_DIR_PROPERTY], f"rows-{tag}"), file_name_suffix=".jsonl"
    )
    return results.examples


class Executor(BaseExampleGenExecutor):
    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _ImageFolderToExample

    def GenerateExamplesByBeam(self, pipeline, exec_properties):
        example_splits = self._example_splits(pipeline, exec_properties)
        # Duplicates: copies of training images kept out of selection and test (duplicates.py).
        example_splits = duplicates.keep_out_copies(example_splits, exec_properties[ROWS_DIR_PROPERTY])
        count_per_split(example_splits, exec_properties[ROWS_DIR_PROPERTY])
        image_stats.stats_per_split(example_splits, exec_properties[ROWS_DIR_PROPERTY])  # image data health
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
        rows_dir = ingest_report.rows_dir(report)
        input_base = exec_properties["input_base"]
        split_dirs = _input_split_dirs(exec_properties)
        layout.check_layout(input_base, split_dirs)
        extras = layout.scan_root_extras(input_base, split_dirs)
        if extras:
            tf.io.gfile.makedirs(rows_dir)
            with tf.io.gfile.GFile(os.path.join(rows_dir, "rows-root.jsonl"), "w") as f:
                f.write("".join(skip_row(input_base, "", path, kind) + "\n" for path, kind in extras))
        super().Do(input_dict, output_dict, {**exec_properties, ROWS_DIR_PROPERTY: rows_dir})
        summary = ingest_report.summary_of_rows(rows_dir)
        summary["duplicates"] = duplicates.read(rows_dir)  # Duplicates (duplicates.py)
        summary["image_stats"] = image_stats.read_stats(rows_dir)  # image data health
        kept = ingest_report.write_report(report, summary)
        ingest_report.check_summary(summary, input_base, split_dirs, kept)
        _check_splits_not_empty(summary, artifact_utils.get_single_instance(output_dict["examples"]))


def _input_split_dirs(exec_properties: Dict[str, Any]) -> List[str]:
    """The folders holding class folders: '' for an unsplit root, else each given split's folder."""
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(exec_properties["input_config"], input_config)
    return list(dict.fromkeys(_split_dir(split.pattern) for split in input_config.splits))


def _check_splits_not_empty(summary: Dict[str, Any], examples) -> None:
    """Every split has an example: an empty test split would leave the Evaluator nothing to judge (NaN)."""
    for split in artifact_utils.decode_split_names(examples.split_names):
        if not sum(summary["examples_per_split"].get(split, {}).values()):
            kept_out = ((summary.get("duplicates") or {}).get("kept_out_per_split") or {}).get(split)
            copies = f" ({kept_out} copies of training images kept out of it)" if kept_out else ""
            raise ImageIngestError(
                f"the {split!r} split has no image{copies}: too few images for the split percentages (--split) "
                "or the given split folders; add images or change --split")
