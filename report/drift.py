"""Data drift: this run's training data against the training data of the model it would replace.

The baseline is the model the run's Evaluator compared with (the latest blessed model of the same task, the
blessing's `baseline` property); its data is found through MLMD lineage: that Model <- its Trainer execution
<- the Examples it trained on -> the StatisticsGen statistics and the ExampleGen ingest report of those
Examples. Compared on the train split:
- the label distribution with TFDV's own drift comparator (L-infinity or Jensen-Shannon divergence);
- the image properties of the ingest report's `image_stats` (width, height, aspect, brightness, contrast
  histograms; formats and colour modes), with the same distance over their distributions.
A distance above the threshold is a drift: a WARNING in the closing lines and a section of the report.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, List, Optional, Tuple

COMPARATORS = ("linf", "js")
TRAIN = "train"


def distance(p: List[float], q: List[float], comparator: str) -> float:
    """L-infinity or Jensen-Shannon divergence (base 2, as TFDV) between two count vectors, each normalised."""
    p_total, q_total = sum(p) or 1, sum(q) or 1
    p, q = [x / p_total for x in p], [x / q_total for x in q]
    if comparator == "linf":
        return max((abs(a - b) for a, b in zip(p, q)), default=0.0)
    m = [(a + b) / 2 for a, b in zip(p, q)]

    def kl(x, y):
        return sum(a * math.log2(a / b) for a, b in zip(x, y) if a > 0)

    return (kl(p, m) + kl(q, m)) / 2


def _artifacts(s, execution_id: int, event_type) -> list:
    ids = [e.artifact_id for e in s.get_events_by_execution_ids([execution_id]) if e.type == event_type]
    return s.get_artifacts_by_id(ids) if ids else []


def _executions(s, artifact_id: int, event_type) -> List[int]:
    return [e.execution_id for e in s.get_events_by_artifact_ids([artifact_id]) if e.type == event_type]


def data_of_examples(s, examples) -> Tuple[Optional[str], Optional[Dict[str, Any]]]:
    """(the train split's statistics file, the ingest report) of an Examples artifact, through MLMD lineage."""
    from ml_metadata.proto import metadata_store_pb2

    event = metadata_store_pb2.Event
    statistics, report = None, None
    for execution_id in _executions(s, examples.id, event.INPUT):
        for artifact in _artifacts(s, execution_id, event.OUTPUT):
            path = os.path.join(artifact.uri, f"Split-{TRAIN}", "FeatureStats.pb")
            if artifact.type == "ExampleStatistics" and os.path.isfile(path):
                statistics = path
    for execution_id in _executions(s, examples.id, event.OUTPUT):
        for artifact in _artifacts(s, execution_id, event.OUTPUT):
            path = os.path.join(artifact.uri, "report.json")
            if artifact.type.endswith("ImageIngestReport") and os.path.isfile(path):
                with open(path) as f:
                    report = json.load(f)
    return statistics, report


def trained_on(s, model_uri: str):
    """The Examples artifact the Trainer that wrote the model at `model_uri` read, or None."""
    from ml_metadata.proto import metadata_store_pb2

    event = metadata_store_pb2.Event
    models = [a for a in s.get_artifacts_by_uri(model_uri) if a.type == "Model"]
    for model in models:
        for execution_id in _executions(s, model.id, event.OUTPUT):
            examples = [a for a in _artifacts(s, execution_id, event.INPUT) if a.type == "Examples"]
            if examples:
                return examples[0]
    return None


def label_drift(current: str, baseline: str, label_key: str, threshold: float, comparator: str) -> Dict[str, Any]:
    """TFDV's comparator over the label feature of two statistics files (the train split's)."""
    import tensorflow_data_validation as tfdv

    now, before = tfdv.load_stats_binary(current), tfdv.load_stats_binary(baseline)
    schema = tfdv.infer_schema(now)
    feature = tfdv.get_feature(schema, label_key)
    if comparator == "linf":
        feature.drift_comparator.infinity_norm.threshold = threshold
    else:
        feature.drift_comparator.jensen_shannon_divergence.threshold = threshold
    anomalies = tfdv.validate_statistics(now, schema, previous_statistics=before)
    measured = [m.value for info in anomalies.drift_skew_info for m in info.drift_measurements
                if label_key in [step for step in info.path.step]]
    info = anomalies.anomaly_info.get(label_key)
    return {"what": "label distribution", "distance": measured[0] if measured else None, "threshold": threshold,
            "drifted": info is not None, "detail": _label_shares(before, label_key) + " -> " + _label_shares(now, label_key)}


def _label_shares(statistics, label_key: str) -> str:
    """'{night: 50%, sunny: 50%}' from a statistics list's train split (its string feature's rank histogram)."""
    for feature in statistics.datasets[0].features:
        if feature.path.step and feature.path.step[-1] == label_key:
            buckets = feature.string_stats.rank_histogram.buckets
            total = sum(b.sample_count for b in buckets) or 1
            return "{" + ", ".join(f"{b.label}: {b.sample_count / total:.0%}" for b in sorted(buckets, key=lambda b: b.label)) + "}"
    return "{}"


def _train_stats(report: Dict[str, Any]) -> Dict[str, Any]:
    return (report.get("image_stats") or {}).get(TRAIN) or {}


def image_drifts(current: Dict[str, Any], baseline: Dict[str, Any], threshold: float,
                 comparator: str) -> List[Dict[str, Any]]:
    """Per image property, the distance between the two runs' train-split distributions (all classes)."""
    from tfx_image_finetune.components.image_folder_example_gen.image_stats import PROPERTIES

    now, before = _train_stats(current), _train_stats(baseline)
    if not now or not before:
        return []
    out = []
    for name in PROPERTIES:
        p = [sum(h) for h in zip(*(s["histogram"][name] for s in now.values()))]
        q = [sum(h) for h in zip(*(s["histogram"][name] for s in before.values()))]
        mean_now = sum(s["mean"][name] * s["count"] for s in now.values()) / max(sum(s["count"] for s in now.values()), 1)
        mean_before = (sum(s["mean"][name] * s["count"] for s in before.values())
                       / max(sum(s["count"] for s in before.values()), 1))
        d = distance(p, q, comparator)
        out.append({"what": name, "distance": d, "threshold": threshold, "drifted": d > threshold,
                    "detail": f"mean {mean_before:.3g} -> {mean_now:.3g}"})
    for name in ("format", "colour"):
        keys = sorted({k for s in list(now.values()) + list(before.values()) for k in s[name]})
        p = [sum(s[name].get(k, 0) for s in now.values()) for k in keys]
        q = [sum(s[name].get(k, 0) for s in before.values()) for k in keys]
        d = distance(p, q, comparator)
        out.append({"what": name, "distance": d, "threshold": threshold, "drifted": d > threshold,
                    "detail": f"{dict(zip(keys, q))} -> {dict(zip(keys, p))}"})
    return out


def drift(metadata_path: str, threshold: float, comparator: str = "linf", label_key: str = "label") -> Dict[str, Any]:
    """{"baseline": the replaced model's URI or None, "why": why no comparison (or ''), "comparator",
    "findings": [{"what", "distance", "threshold", "drifted", "detail"}]} for the latest run."""
    from tfx_image_finetune.components.evaluator.executor import BASELINE_PROPERTY
    from tfx_image_finetune.report import run_summary

    s = run_summary.store(metadata_path)
    run = run_summary.latest_run(s)
    in_run = s.get_artifacts_by_context(run.id) if run else []
    blessings = [a for a in in_run if a.type == "ModelBlessing"]
    note = (max(blessings, key=lambda a: a.id).custom_properties[BASELINE_PROPERTY].string_value
            if blessings and BASELINE_PROPERTY in max(blessings, key=lambda a: a.id).custom_properties else "")
    out = {"baseline": None, "why": "", "comparator": comparator, "threshold": threshold, "findings": []}
    if not note or note.startswith("none"):
        out["why"] = "no model is being replaced (no baseline)"
        return out
    examples = [a for a in in_run if a.type == "Examples"]
    before_examples = trained_on(s, note)
    if not examples or before_examples is None:
        out["why"] = f"the training data of {note} is not recorded in this metadata"
        return out
    out["baseline"] = note
    stats_now, report_now = data_of_examples(s, max(examples, key=lambda a: a.id))
    stats_before, report_before = data_of_examples(s, before_examples)
    if stats_now and stats_before:
        out["findings"].append(label_drift(stats_now, stats_before, label_key, threshold, comparator))
    out["findings"] += image_drifts(report_now or {}, report_before or {}, threshold, comparator)
    return out


def warning_lines(result: Dict[str, Any]) -> List[str]:
    """The closing lines' WARNINGs: one per drift beyond the threshold."""
    name = {"linf": "L-infinity", "js": "Jensen-Shannon"}[result["comparator"]]
    return [f"WARNING: data drift against the replaced model's training data: {f['what']} {name} "
            f"{f['distance']:.3f} > {f['threshold']} ({f['detail']})"
            for f in result["findings"] if f["drifted"] and f["distance"] is not None]
