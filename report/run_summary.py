"""What a finished run did, read back from its MLMD store and artifacts (for the CLI's last lines and tests)."""

from __future__ import annotations

import glob
import json
import math
import os
from typing import Any, Dict, List, Optional, Tuple

from tfx_image_finetune.components.evaluator.executor import BASELINE_PROPERTY
from tfx_image_finetune.components.tflite_gate.executor import EVALUATION_FILE as TFLITE_EVALUATION_FILE
from tfx_image_finetune.metadata_store import State, store  # noqa: F401 - State: for callers


def execution_seconds(metadata_path: str) -> Dict[str, float]:
    """{component id as the console names it, e.g. 'Trainer', 'Pusher': seconds its latest execution took}.
    TFX's "node" context of each component is named "<pipeline name>.<component id>"."""
    s = store(metadata_path)
    latest = {}
    for node in s.get_contexts_by_type("node"):
        executions = s.get_executions_by_context(node.id)
        if executions:
            execution = max(executions, key=lambda e: e.id)
            latest[node.name.rsplit(".", 1)[-1]] = (execution.last_update_time_since_epoch
                                                    - execution.create_time_since_epoch) / 1000
    return latest


def latest_artifact_uri(metadata_path: str, type_name: str) -> Optional[str]:
    artifact = _latest_artifact(metadata_path, type_name)
    return artifact.uri if artifact else None


def _latest_artifact(metadata_path: str, type_name: str):
    artifacts = store(metadata_path).get_artifacts_by_type(type_name)
    return max(artifacts, key=lambda a: a.id) if artifacts else None


def latest_run(s):
    """The newest pipeline_run context (the run that just ended, as one run at a time uses an --output)."""
    runs = s.get_contexts_by_type("pipeline_run")
    return max(runs, key=lambda c: c.id) if runs else None


def push(s, run_context_id: Optional[int], blessed: bool) -> Dict[str, Any]:
    """What the Pusher of the run did, from its PushedModel artifact: {'pushed': True, 'version',
    'destination'} or {'pushed': False, 'why'}. Never the newest version on disk: another pipeline may have
    pushed to the same serving dir since. The one reader of the push for the closing line and the report."""
    found = [a for a in s.get_artifacts_by_context(run_context_id) if a.type == "PushedModel"] \
        if run_context_id is not None else []
    pushed = max(found, key=lambda a: a.id) if found else None
    if pushed is None:
        return {"pushed": False, "why": "the Pusher did not run"}
    props = pushed.custom_properties
    if "pushed" in props and props["pushed"].int_value == 1:
        done = {"pushed": True, "version": props["pushed_version"].string_value,
                "destination": props["pushed_destination"].string_value}
        if "tflite" in props:  # --tflite: "pushed" or "not pushed: <why>" (components/pusher)
            done["tflite"] = props["tflite"].string_value
        return done
    return {"pushed": False, "why": "the model was not blessed" if not blessed else "the Pusher did not push"}


def blessed(metadata_path: str) -> bool:
    uri = latest_artifact_uri(metadata_path, "ModelBlessing")
    return bool(uri) and os.path.exists(os.path.join(uri, "BLESSED"))


def baseline(metadata_path: str) -> Optional[str]:
    """What the latest Evaluator compared with: the baseline model's URI, or 'none: <why>'."""
    blessing = _latest_artifact(metadata_path, "ModelBlessing")
    if blessing is None or BASELINE_PROPERTY not in blessing.custom_properties:
        return None
    return blessing.custom_properties[BASELINE_PROPERTY].string_value


def evaluation_result(metadata_path: str) -> Optional[Dict[str, Any]]:
    """The latest Evaluator's output as report/evaluation.py reads it, or None if no Evaluator ran."""
    from tfx_image_finetune.report import evaluation

    uri = latest_artifact_uri(metadata_path, "ModelEvaluation")
    return evaluation.read(uri) if uri else None


def eval_metrics(metadata_path: str) -> Dict[str, float]:
    """The latest Evaluator's overall-slice metrics, e.g. {'binary_accuracy': 0.93, 'example_count': 500}."""
    result = evaluation_result(metadata_path)
    return result["metrics"] if result else {}


def verdict_lines(result: Optional[Dict[str, Any]], total_images: Optional[int]) -> List[str]:
    """'Test: binary_accuracy 0.754 (95% CI 0.64-0.86, 57 images)' per gated metric, and a WARNING when the
    test split is too small for the threshold decision to mean much (report/evaluation.py says when)."""
    from tfx_image_finetune.report import evaluation

    if not result:
        return []
    images = result["metrics"].get("example_count")
    lines = [f"Test: {evaluation.with_interval(name, value, interval, images)}"
             for name, value, interval, _ in evaluation.gated(result)]
    return lines + [f"WARNING: {w}" for w in evaluation.too_small(result, total_images)]


# A class with fewer training examples than this is named in a warning.
FEW_TRAIN_EXAMPLES = 10


def format_metrics(metrics: Dict[str, float]) -> str:
    """'auc=0.9800, precision=n/a, ...': a metric TFMA could not compute (nan, e.g. precision when the model
    predicted no positive) is shown as n/a."""
    return ", ".join(f"{k}={'n/a' if math.isnan(v) else f'{v:.4f}'}"
                     for k, v in sorted(metrics.items()) if k != "example_count")


def ingest_report(metadata_path: str) -> Tuple[Optional[str], Dict[str, Any]]:
    """(path, content) of the latest ExampleGen ingest report recorded in MLMD, or (None, {})."""
    from tfx_image_finetune.components.image_folder_example_gen.component import ImageIngestReport
    from tfx_image_finetune.components.ingest_report import REPORT_FILE, read_report

    uri = latest_artifact_uri(metadata_path, ImageIngestReport.TYPE_NAME)
    report = read_report(uri) if uri else None
    return (os.path.join(uri, REPORT_FILE), report) if report is not None else (None, {})


def kept_ingest_report(pipeline_root: str, after_execution_id: int = 0) -> Tuple[Optional[str], Dict[str, Any]]:
    """The newest report an ExampleGen kept beside its artifacts (also after a failed execution)."""
    found = []
    for path in glob.glob(os.path.join(pipeline_root, "*", "ingest_reports", "*.json")):
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem.isdigit() and int(stem) > after_execution_id:
            found.append((int(stem), path))
    if not found:
        return None, {}
    path = max(found)[1]
    with open(path) as f:
        return path, json.load(f)


def _classes(counts: Dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items())


def ingest_lines(path: Optional[str], report: Dict[str, Any]) -> List[str]:
    """What ExampleGen took and left: examples per split and class, skips per folder and reason, warnings."""
    if not report:
        return []
    lines = []
    per_split = report.get("examples_per_split", {})
    for split, counts in sorted(per_split.items(), key=lambda kv: (kv[0] != "train", kv[0])):
        lines.append(f"Ingested {split}: {sum(counts.values())} ({_classes(counts)})")
    if not report.get("examples_per_split"):
        lines.append(f"Ingested {report.get('valid_images', 0)} images")
    if report.get("nested_images"):
        lines.append(f"  {report['nested_images']} of them from sub-folders of their class folder")
    per_reason = report.get("skipped_per_reason", {})
    for folder, reasons in per_reason.items():
        where = "" if folder == "." else f" in {folder}/"
        lines.append(f"Skipped{where}: {sum(reasons.values())} ({', '.join(f'{k} {n}' for k, n in reasons.items())})")
    if not per_reason:
        lines.append(f"Skipped: {report.get('skipped_files', 0)}")
    lines += duplicate_lines(report.get("duplicates"))
    for warning in class_warnings(report):
        lines.append(f"WARNING: {warning}")
    if path:
        lines.append(f"Ingest report: {path}")
    return lines


def duplicate_lines(findings: Optional[Dict[str, Any]], listed: int = 5) -> List[str]:
    """'Duplicates: ...' (the ExampleGen's duplicates.find) and a WARNING naming conflicting labels."""
    if not findings:
        return []
    within = findings.get("within_split") or {}
    parts = [f"{within.get('train', 0)} within train"] + [f"{n} within {s}" for s, n in within.items() if s != "train"]
    kept_out = findings.get("kept_out", 0)
    per_split = findings.get("kept_out_per_split") or {}
    where = f" ({', '.join(f'{s} {n}' for s, n in per_split.items())})" if kept_out else ""
    parts.append(f"{kept_out} copies of training images kept out of selection/test{where}")
    if findings.get("across_splits"):
        parts.append(f"{findings['across_splits']} copies between selection and test (kept)")
    conflicts = findings.get("conflicting_labels", 0)
    parts.append(f"{conflicts} conflicting labels")
    lines = [f"Duplicates: {', '.join(parts)}"]
    if conflicts:
        pairs = (findings.get("pairs") or {}).get("conflicting_labels", [])[:listed]
        shown = "; ".join(f"{p['path']} ({p['label']}) = {p['copy_of']} ({p['copy_of_label']})" for p in pairs)
        more = f"; and {conflicts - len(pairs)} more in the ingest report" if conflicts > len(pairs) else ""
        lines.append(f"WARNING: the same image under two labels (kept; fix the labels): {shown}{more}")
    return lines


def class_warnings(report: Dict[str, Any], minimum: int = FEW_TRAIN_EXAMPLES) -> List[str]:
    train = report.get("examples_per_split", {}).get("train", {})
    few = {name: n for name, n in train.items() if n < minimum}
    return [f"class {name!r} has only {n} training example(s) (fewer than {minimum}); its accuracy will be "
            f"unreliable" for name, n in few.items()]


def strategy_line(metadata_path: str) -> Optional[str]:
    """How the latest Trainer chose its strategy, and (--warm-start) where it started (history.json)."""
    from tfx_image_finetune.trainer.strategy import describe as describe_strategy

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


def tflite_evaluation(metadata_path: str) -> Dict[str, Any]:
    """--tflite: the evaluation.json of the latest run's TFLiteGate (components/tflite_gate), or {} (none ran)."""
    from tfx_image_finetune.components.tflite_gate.component import TFLiteEvaluation

    s = store(metadata_path)
    run = latest_run(s)
    found = [a for a in s.get_artifacts_by_context(run.id) if a.type == TFLiteEvaluation.TYPE_NAME] if run else []
    uri = max(found, key=lambda a: a.id).uri if found else None
    path = os.path.join(uri, TFLITE_EVALUATION_FILE) if uri else None
    if not path or not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def tflite_line(evaluation: Dict[str, Any], pushed: Dict[str, Any]) -> str:
    """'TFLite (int8): accuracy ... vs SavedModel ..., ...; pushed: <version>/tflite/model.tflite' or why not."""
    from tfx_image_finetune.serving_contract import TFLITE_DIR, TFLITE_FILE

    mode = evaluation.get("export", {}).get("mode", "?")
    figures = (f"accuracy {evaluation['tflite_accuracy']:.4f} vs SavedModel {evaluation['saved_model_accuracy']:.4f}, "
               f"top-1 agreement {100 * evaluation['agreement']:.1f}%, {evaluation['tflite_bytes'] / 1e6:.1f} MB vs "
               f"{evaluation['saved_model_bytes'] / 1e6:.1f} MB, {evaluation['tflite_ms_per_image']:.1f} vs "
               f"{evaluation['saved_model_ms_per_image']:.1f} ms/image (1 thread)")
    if pushed.get("tflite") == "pushed":
        return f"TFLite ({mode}): {figures}; pushed: {os.path.join(pushed['destination'], TFLITE_DIR, TFLITE_FILE)}"
    if not evaluation["passed"]:
        return f"TFLite ({mode}) NOT pushed: {evaluation['reason']} (the SavedModel push is unaffected)"
    return f"TFLite ({mode}): {figures}; not pushed ({pushed.get('why', 'the model was not pushed')})"


def describe(metadata_path: str, serving_model_dir: str) -> str:
    result = evaluation_result(metadata_path)
    shown = format_metrics(result["metrics"] if result else {})
    compared = baseline(metadata_path)
    lines = [line for line in (strategy_line(metadata_path), compared and f"Baseline: {compared}") if line]
    lines += verdict_lines(result, ingest_report(metadata_path)[1].get("valid_images"))
    if blessed(metadata_path):
        s = store(metadata_path)
        run = latest_run(s)
        pushed = push(s, run.id if run else None, True)
        where = pushed["destination"] if pushed["pushed"] else f"none ({pushed['why']} to {serving_model_dir})"
        lines.append(f"Model BLESSED ({shown}); serving version: {where}")
    else:
        pushed = {"pushed": False, "why": "the model was not blessed"}
        lines.append(f"Model NOT blessed ({shown}): nothing new pushed to {serving_model_dir}")
    lite = tflite_evaluation(metadata_path)
    if lite:
        lines.append(tflite_line(lite, pushed))
    return "\n".join(lines)
