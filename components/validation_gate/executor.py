"""Read every split's anomalies and fail, listing them, if there are any."""

import os
from typing import Any, Dict, List

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2

from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils


class DataAnomaliesError(ValueError):
    """ExampleValidator found anomalies in the raw examples."""


def anomaly_lines(anomalies_artifact: types.Artifact) -> List[str]:
    lines = []
    for split in artifact_utils.decode_split_names(anomalies_artifact.split_names):
        uri = artifact_utils.get_split_uri([anomalies_artifact], split)
        found = anomalies_pb2.Anomalies()
        with tf.io.gfile.GFile(os.path.join(uri, "SchemaDiff.pb"), "rb") as f:  # ExampleValidator's file name
            found.ParseFromString(f.read())
        for feature, info in sorted(found.anomaly_info.items()):
            lines.append(f"[{split}] feature {feature!r}: {info.short_description} ({info.description})")
        if found.HasField("dataset_anomaly_info"):
            info = found.dataset_anomaly_info
            lines.append(f"[{split}] dataset: {info.short_description} ({info.description})")
    return lines


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict, exec_properties: Dict[str, Any]):
        lines = anomaly_lines(artifact_utils.get_single_instance(input_dict["anomalies"]))
        if lines:
            raise DataAnomaliesError(
                "ExampleValidator found anomalies in the raw examples; fix the data or the schema in schema/ "
                "before training:\n  " + "\n  ".join(lines)
            )
