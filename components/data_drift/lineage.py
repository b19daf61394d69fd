"""MLMD lineage from a model to the data it was trained on: Model <- its Trainer execution <- the Examples it read
-> the StatisticsGen statistics and the ExampleGen ingest report of those Examples."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Tuple

TRAIN = "train"


def statistics_file(statistics_uri: str) -> str:
    """The train split's statistics in a StatisticsGen output (a DatasetFeatureStatisticsList)."""
    return os.path.join(statistics_uri, f"Split-{TRAIN}", "FeatureStats.pb")


def _event():
    from ml_metadata.proto import metadata_store_pb2

    return metadata_store_pb2.Event


def _artifacts(s, execution_id: int, event_type) -> list:
    ids = [e.artifact_id for e in s.get_events_by_execution_ids([execution_id]) if e.type == event_type]
    return s.get_artifacts_by_id(ids) if ids else []


def _executions(s, artifact_id: int, event_type) -> list:
    return [e.execution_id for e in s.get_events_by_artifact_ids([artifact_id]) if e.type == event_type]


def data_artifacts(s, examples) -> Tuple[Optional[Any], Optional[Any]]:
    """(the statistics, the ingest report) MLMD artifacts of an Examples artifact, the newest of each."""
    event, statistics, report = _event(), None, None
    for execution_id in _executions(s, examples.id, event.INPUT):
        for artifact in _artifacts(s, execution_id, event.OUTPUT):
            if artifact.type == "ExampleStatistics" and os.path.isfile(statistics_file(artifact.uri)):
                statistics = artifact if statistics is None or artifact.id > statistics.id else statistics
    for execution_id in _executions(s, examples.id, event.OUTPUT):
        for artifact in _artifacts(s, execution_id, event.OUTPUT):
            if artifact.type.endswith("ImageIngestReport"):
                report = artifact
    return statistics, report


def data_of_examples(s, examples) -> Tuple[Optional[str], Optional[Dict[str, Any]]]:
    """(the train split's statistics file, the ingest report's content) of an Examples artifact."""
    from tfx_image_finetune.components.ingest_report import read_report

    statistics, report = data_artifacts(s, examples)
    return (statistics_file(statistics.uri) if statistics else None), (read_report(report.uri) if report else None)


def trained_on(s, model_uri: str):
    """The Examples artifact the Trainer that wrote the model at `model_uri` read, or None."""
    event = _event()
    for model in [a for a in s.get_artifacts_by_uri(model_uri) if a.type == "Model"]:
        for execution_id in _executions(s, model.id, event.OUTPUT):
            examples = [a for a in _artifacts(s, execution_id, event.INPUT) if a.type == "Examples"]
            if examples:
                return examples[0]
    return None
