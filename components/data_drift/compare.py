"""Distances between two runs' training data: the label distribution by TFDV's own drift comparator, the image
properties of the ingest reports' `image_stats` by the same distance over their distributions (train split)."""

from __future__ import annotations

import math
from typing import Any, Dict, List

from tfx_image_finetune.components.data_drift.lineage import TRAIN


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
            "drifted": info is not None,
            "detail": f"{_label_shares(before, label_key)} -> {_label_shares(now, label_key)}"}


def _label_shares(statistics, label_key: str) -> str:
    """'{night: 50%, sunny: 50%}' from a statistics list's train split (its string feature's rank histogram)."""
    for feature in statistics.datasets[0].features:
        if feature.path.step and feature.path.step[-1] == label_key:
            buckets = feature.string_stats.rank_histogram.buckets
            total = sum(b.sample_count for b in buckets) or 1
            shares = (f"{b.label}: {b.sample_count / total:.0%}" for b in sorted(buckets, key=lambda b: b.label))
            return "{" + ", ".join(shares) + "}"
    return "{}"


def _train_stats(report: Dict[str, Any]) -> Dict[str, Any]:
    return (report.get("image_stats") or {}).get(TRAIN) or {}


def _mean(per_class: Dict[str, Any], name: str) -> float:
    """A property's mean over all classes, from the per-class means and counts."""
    count = sum(s["count"] for s in per_class.values())
    return sum(s["mean"][name] * s["count"] for s in per_class.values()) / max(count, 1)


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
        mean_now, mean_before = _mean(now, name), _mean(before, name)
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


def warning_lines(result: Dict[str, Any]) -> List[str]:
    """The closing lines' WARNINGs: one per drift beyond the threshold."""
    name = {"linf": "L-infinity", "js": "Jensen-Shannon"}[result["comparator"]]
    return [f"WARNING: data drift against the replaced model's training data: {f['what']} {name} "
            f"{f['distance']:.3f} > {f['threshold']} ({f['detail']})"
            for f in result["findings"] if f["drifted"] and f["distance"] is not None]
