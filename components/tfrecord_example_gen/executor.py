"""Executor: read the TFRecords, keep each tf.Example whose image decodes, report the others with the reason."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Dict

import apache_beam as beam
import tensorflow as tf
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.types import artifact_utils

from tfx_image_finetune.components import ingest_report
from tfx_image_finetune.components.image_folder_example_gen import image_stats
from tfx_image_finetune.components.ingest_report import ROWS_DIR_PROPERTY, decode_error, max_image_pixels
from tfx_image_finetune.data_contract import FILENAME_FEATURE, INGEST_REPORT_KEY

IMAGE_KEY = "image_key"
LABEL_KEY = "label_key"


def _first(feature: tf.train.Feature):
    for kind in ("bytes_list", "int64_list", "float_list"):
        values = getattr(feature, kind).value
        if values:
            return values[0]
    return None


class _CheckExample(beam.DoFn):
    """(file, record) -> the record (main output) and one JSON report row (tagged output 'report')."""

    def __init__(self, input_base: str, image_key: str, label_key: str, max_pixels: int):
        self._input_base, self._image_key, self._label_key = input_base, image_key, label_key
        self._max_pixels = max_pixels

    def process(self, item):
        filename, record = item
        relative = os.path.relpath(filename, self._input_base) if not self._input_base.count("://") else filename
        try:
            features = tf.train.Example.FromString(record).features.feature
        except Exception as err:  # noqa: BLE001 - a DecodeError of the proto library
            return [self._skip(relative, record, "", "not a tf.Example", f"not a tf.Example: {err}")]
        label = _first(features[self._label_key]) if self._label_key in features else None
        label = "" if label is None else label.decode("utf-8", "replace") if isinstance(label, bytes) else str(label)
        name = _first(features[FILENAME_FEATURE]) if FILENAME_FEATURE in features else None
        ident = name.decode("utf-8", "replace") if isinstance(name, bytes) else None
        image = _first(features[self._image_key]) if self._image_key in features else None
        if not isinstance(image, bytes):
            return [self._skip(relative, record, label, f"no {self._image_key!r} bytes feature",
                               f"no {self._image_key!r} bytes feature", ident)]
        if not label:
            return [self._skip(relative, record, label, f"no {self._label_key!r} feature",
                               f"no {self._label_key!r} feature", ident)]
        reason = decode_error(image, self._max_pixels)
        if reason:
            return [self._skip(relative, record, label, reason.split(":")[0], reason, ident)]
        return [record, beam.pvalue.TaggedOutput("report", json.dumps(
            {"path": relative, "label": label, "split_dir": "", "ok": True}))]

    @staticmethod
    def _skip(relative, record, label, kind, reason, ident=None):
        ident = ident or f"record sha1 {hashlib.sha1(record).hexdigest()[:12]}"
        row = {"path": f"{relative} [{ident}]", "label": label, "split_dir": "", "ok": False, "kind": kind,
               "reason": reason}
        return beam.pvalue.TaggedOutput("report", json.dumps(row))


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(bytes)
def _CheckedTFRecordToExample(pipeline: beam.Pipeline, exec_properties: Dict[str, Any], split_pattern: str):
    input_base = exec_properties["input_base"]
    files = sorted(tf.io.gfile.glob(os.path.join(input_base, split_pattern)))
    if not files:
        raise FileNotFoundError(f"no TFRecord file matches {os.path.join(input_base, split_pattern)!r}")
    results = (
        pipeline
        | "ListFiles" >> beam.Create(files)
        | "Read" >> beam.io.ReadAllFromTFRecord(with_filename=True)
        | "CheckImage" >> beam.ParDo(_CheckExample(input_base, exec_properties[IMAGE_KEY],
                                                   exec_properties[LABEL_KEY], max_image_pixels(exec_properties))
                           ).with_outputs("report", main="examples")
    )
    _ = results.report | "WriteReportRows" >> beam.io.WriteToText(
        os.path.join(exec_properties[ROWS_DIR_PROPERTY], "rows-all"), file_name_suffix=".jsonl")
    return results.examples


class Executor(BaseExampleGenExecutor):
    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _CheckedTFRecordToExample

    def GenerateExamplesByBeam(self, pipeline, exec_properties):
        example_splits = super().GenerateExamplesByBeam(pipeline, exec_properties)
        ingest_report.count_per_split(example_splits, exec_properties[ROWS_DIR_PROPERTY],
                                      exec_properties[LABEL_KEY])
        image_stats.stats_per_split(example_splits, exec_properties[ROWS_DIR_PROPERTY], exec_properties[IMAGE_KEY],
                                    exec_properties[LABEL_KEY])
        return example_splits

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        report = artifact_utils.get_single_instance(output_dict[INGEST_REPORT_KEY])
        rows_dir = ingest_report.rows_dir(report)
        super().Do(input_dict, output_dict, {**exec_properties, ROWS_DIR_PROPERTY: rows_dir})
        summary = ingest_report.summary_of_rows(rows_dir)
        summary["image_stats"] = image_stats.read_stats(rows_dir)  # image data health
        kept = ingest_report.write_report(report, summary)
        ingest_report.check_summary(summary, exec_properties["input_base"], [""], kept)
