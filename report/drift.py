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

from typing import Any, Dict

from tfx_image_finetune.components.data_drift.compare import image_drifts, label_drift
from tfx_image_finetune.components.data_drift.lineage import data_of_examples, trained_on


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
