"""ValidationGate: ExampleValidator only records anomalies; this component turns them into a stop.

Transform is made to run after it (`add_upstream_node`), so a failed gate means no Transform, no training.
A Python-function component: one input artifact, no parameters, nothing to split into an executor.
"""

import os
from typing import List

from tfx import types
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts


class DataAnomaliesError(ValueError):
    """ExampleValidator found anomalies in the raw examples."""


def anomaly_lines(anomalies_artifact: types.Artifact) -> List[str]:
    import tensorflow as tf
    from tensorflow_metadata.proto.v0 import anomalies_pb2

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


@component
def ValidationGate(anomalies: InputArtifact[standard_artifacts.ExampleAnomalies]) -> None:  # noqa: N802
    """Fails the run, listing every split's anomalies, if there are any."""
    lines = anomaly_lines(anomalies)
    if lines:
        raise DataAnomaliesError(
            "ExampleValidator found anomalies in the raw examples; fix the data or the schema in schema/ "
            "before training:\n  " + "\n  ".join(lines)
        )
