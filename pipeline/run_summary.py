"""What a finished run did, read back from its MLMD store and artifacts (for the CLI's last lines and tests)."""

from __future__ import annotations

import os
from typing import Dict, Optional

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2

from components.evaluator.executor import BASELINE_PROPERTY
from trainer.serving_contract import versions

State = metadata_store_pb2.Execution.State


def store(metadata_path: str) -> mlmd.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    return mlmd.MetadataStore(config)


def last_states(metadata_path: str, pipeline_name: str) -> Dict[str, str]:
    """{node id: state of its latest execution} (COMPLETE, CACHED, FAILED, ...)."""
    s = store(metadata_path)
    out = {}
    for ctx in s.get_contexts_by_type("node"):
        latest = max(s.get_executions_by_context(ctx.id), key=lambda e: e.id)
        out[ctx.name[len(pipeline_name) + 1:]] = State.Name(latest.last_known_state)
    return out


def execution_seconds(metadata_path: str) -> Dict[str, float]:
    """{component type, e.g. 'Trainer': seconds its latest execution took}."""
    s = store(metadata_path)
    types = {t.id: t.name.rsplit(".", 1)[-1] for t in s.get_execution_types()}
    latest = {}
    for execution in sorted(s.get_executions(), key=lambda e: e.id):
        latest[types[execution.type_id]] = (execution.last_update_time_since_epoch
                                            - execution.create_time_since_epoch) / 1000
    return latest


def latest_artifact_uri(metadata_path: str, type_name: str) -> Optional[str]:
    artifact = _latest_artifact(metadata_path, type_name)
    return artifact.uri if artifact else None


def _latest_artifact(metadata_path: str, type_name: str):
    artifacts = store(metadata_path).get_artifacts_by_type(type_name)
    return max(artifacts, key=lambda a: a.id) if artifacts else None


def blessed(metadata_path: str) -> bool:
    uri = latest_artifact_uri(metadata_path, "ModelBlessing")
    return bool(uri) and os.path.exists(os.path.join(uri, "BLESSED"))


def baseline(metadata_path: str) -> Optional[str]:
    """What the latest Evaluator compared with: the baseline model's URI, or 'none: <why>'."""
    blessing = _latest_artifact(metadata_path, "ModelBlessing")
    if blessing is None or BASELINE_PROPERTY not in blessing.custom_properties:
        return None
    return blessing.custom_properties[BASELINE_PROPERTY].string_value


def eval_metrics(metadata_path: str) -> Dict[str, float]:
    """The latest Evaluator's overall-slice metrics, e.g. {'binary_accuracy': 0.93, 'example_count': 500}."""
    import tensorflow_model_analysis as tfma

    uri = latest_artifact_uri(metadata_path, "ModelEvaluation")
    if not uri:
        return {}
    metrics = tfma.load_eval_result(uri).slicing_metrics[0][1][""][""]
    return {name: float(value["doubleValue"]) for name, value in metrics.items() if "doubleValue" in value}


def strategy_line(metadata_path: str) -> Optional[str]:
    """How the latest Trainer chose its strategy, and (--warm-start) where it started (history.json)."""
    import json

    from trainer.strategy import describe as describe_strategy

    uri = latest_artifact_uri(metadata_path, "ModelRun")
    path = os.path.join(uri, "history.json") if uri else None
    if not path or not os.path.isfile(path):
        return None
    with open(path) as f:
        history = json.load(f)
    lines = [describe_strategy(history["strategy"])] if history.get("strategy") else []
    if history.get("warm_start"):
        lines.append(f"Start: {history['warm_start']['note']}")
    return "\n".join(lines) or None


def describe(metadata_path: str, serving_model_dir: str) -> str:
    metrics = eval_metrics(metadata_path)
    shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()) if k != "example_count")
    pushed = versions(serving_model_dir)
    compared = baseline(metadata_path)
    against = f"Baseline: {compared}\n" if compared else ""
    strategy = strategy_line(metadata_path)
    against = (f"{strategy}\n" if strategy else "") + against
    if blessed(metadata_path):
        where = os.path.join(serving_model_dir, str(pushed[-1])) if pushed else serving_model_dir
        return f"{against}Model BLESSED ({shown}); serving version: {where}"
    return f"{against}Model NOT blessed ({shown}): nothing new pushed to {serving_model_dir}"
