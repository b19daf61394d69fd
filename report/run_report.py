"""The run report: what a run did, gathered from its MLMD store and artifacts into one self-contained HTML page.

Written after every local run to `<output>/reports/<run-id>/report.html`, copied to `<output>/report.html`
(the latest). It reads what the components wrote rather than recomputing it: the ingest report, the Trainer's
history.json, TFMA's metrics and validation result, the blessing's baseline note, the push. The one thing TFMA
does not keep here is per-example predictions, so the confusion matrix, per-class precision/recall and the
most confidently wrong images come from running the trained model's `serving_examples` signature over the
test split (the Evaluator's split) in bounded batches.
"""

from __future__ import annotations

import glob
import heapq
import json
import os
import re
import shutil
from typing import Any, Dict, List, Optional

from tfx_image_finetune.config import EXAMPLES_COMPRESSION

REPORTS_DIR, REPORT_FILE = "reports", "report.html"
PREDICT_BATCH = 64
MAX_TEST_EXAMPLES = 20000  # confusion matrix over at most this many test examples (the report says so)
GALLERY_SIZE = 8


def metadata_path(output_dir: str) -> str:
    return os.path.join(output_dir, "metadata.sqlite")


def _latest(s, type_name: str, context_id: Optional[int] = None):
    """The newest artifact of a type, preferring those of the given run context."""
    if context_id is not None:
        found = [a for a in s.get_artifacts_by_context(context_id) if a.type == type_name]
        if found:
            return max(found, key=lambda a: a.id)
    found = s.get_artifacts_by_type(type_name)
    return max(found, key=lambda a: a.id) if found else None


def latest_run_id(s) -> Optional[Any]:
    from tfx_image_finetune.report import run_summary

    return run_summary.latest_run(s)


def _examples_by_split(examples_uri: str) -> Dict[str, List[str]]:
    out = {}
    for folder in sorted(glob.glob(os.path.join(examples_uri, "Split-*"))):
        out[os.path.basename(folder)[len("Split-"):]] = sorted(glob.glob(os.path.join(folder, "*.gz")))
    return out


def split_class_counts(examples_uri: str, label_key: str = "label") -> Dict[str, Dict[str, int]]:
    """{split: {class: examples}}, reading only the label feature."""
    import tensorflow as tf

    spec = {label_key: tf.io.FixedLenFeature([1], tf.string)}
    counts: Dict[str, Dict[str, int]] = {}
    for split, files in _examples_by_split(examples_uri).items():
        per_class: Dict[str, int] = {}
        for batch in tf.data.TFRecordDataset(files, compression_type=EXAMPLES_COMPRESSION).batch(1024):
            for label in tf.io.parse_example(batch, spec)[label_key].numpy()[:, 0]:
                name = label.decode()
                per_class[name] = per_class.get(name, 0) + 1
        counts[split] = dict(sorted(per_class.items()))
    return counts


def evaluation(evaluation_uri: str) -> Dict[str, Any]:
    """TFMA's own outputs: overall-slice metrics, the thresholds of the EvalConfig, the validation result."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_eval_result(evaluation_uri)
    overall = result.slicing_metrics[0][1][""][""] if result.slicing_metrics else {}
    metrics = {k: float(v["doubleValue"]) for k, v in overall.items() if "doubleValue" in v}
    thresholds = {}
    for spec in result.config.metrics_specs:
        for metric in spec.metrics:
            if metric.HasField("threshold"):
                t = metric.threshold
                key = _snake(metric.class_name)
                thresholds[key] = {
                    "lower_bound": t.value_threshold.lower_bound.value
                    if t.value_threshold.HasField("lower_bound") else None,
                    "max_drop": -t.change_threshold.absolute.value if t.change_threshold.HasField("absolute") else None,
                }
    out = {"metrics": metrics, "thresholds": thresholds, "validation_ok": None, "failures": []}
    try:
        validation = tfma.load_validation_result(evaluation_uri)
    except Exception:  # no validation file: nothing was gated
        return out
    out["validation_ok"] = bool(validation.validation_ok)
    for per_slice in validation.metric_validations_per_slice:
        for failure in per_slice.failures:
            out["failures"].append(f"{failure.metric_key.name}: {failure.message}")
    baseline_metrics = {}
    # Only an evaluation with a baseline has its metrics (TFX drops the baseline ModelSpec without one);
    # asking TFMA for them anyway logs "Fail to find metrics for model name: baseline" on a first run.
    name = baseline_model_name(result.config)
    if name is not None:
        base = tfma.load_eval_result(evaluation_uri, model_name=name)
        base_overall = base.slicing_metrics[0][1][""][""] if base.slicing_metrics else {}
        baseline_metrics = {k: float(v["doubleValue"]) for k, v in base_overall.items() if "doubleValue" in v}
    out["baseline_metrics"] = baseline_metrics
    return out


def baseline_model_name(eval_config) -> Optional[str]:
    """The baseline's model name in an evaluation's (saved) EvalConfig, or None if it had no baseline."""
    specs = eval_config.model_specs if eval_config is not None else []
    return next((spec.name for spec in specs if spec.is_baseline), None)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_predictions(model_uri: str, test_files: List[str], classes: List[str], image_key: str = "image",
                     label_key: str = "label") -> Dict[str, Any]:
    """Confusion matrix (rows: true class, columns: predicted, in class-id order) and the most confidently wrong
    images, from the trained model's `serving_examples` signature over the test examples."""
    import tensorflow as tf
    from tfx.utils import path_utils

    from tfx_image_finetune.config import FILENAME_FEATURE
    from tfx_image_finetune.serving_contract import CLASS_IDS, EXAMPLES_SIGNATURE, PROBABILITIES

    serve = tf.saved_model.load(path_utils.serving_model_path(model_uri)).signatures[EXAMPLES_SIGNATURE]
    index = {name: i for i, name in enumerate(classes)}
    matrix = [[0] * len(classes) for _ in classes]
    wrong: List[tuple] = []  # min-heap of (probability, n, record)
    spec = {key: tf.io.FixedLenFeature([1], tf.string) for key in (image_key, label_key)}
    spec[FILENAME_FEATURE] = tf.io.FixedLenFeature([1], tf.string, default_value="")
    seen = 0
    ds = tf.data.TFRecordDataset(test_files, compression_type=EXAMPLES_COMPRESSION).take(MAX_TEST_EXAMPLES).batch(PREDICT_BATCH)
    for batch in ds:
        out = serve(examples=batch)
        raw = tf.io.parse_example(batch, spec)
        probabilities, predicted = out[PROBABILITIES].numpy(), out[CLASS_IDS].numpy()
        for i, label in enumerate(raw[label_key].numpy()[:, 0]):
            true = index[label.decode()]
            matrix[true][int(predicted[i])] += 1
            if int(predicted[i]) != true:
                p = float(probabilities[i][predicted[i]])
                record = {"true": classes[true], "predicted": classes[int(predicted[i])], "probability": p,
                          "file": raw[FILENAME_FEATURE].numpy()[i, 0].decode(), "image": raw[image_key].numpy()[i, 0]}
                heapq.heappush(wrong, (p, seen + i, record))
                if len(wrong) > GALLERY_SIZE:
                    heapq.heappop(wrong)
        seen += len(predicted)
    total = sum(1 for _ in tf.data.TFRecordDataset(test_files, compression_type=EXAMPLES_COMPRESSION))
    return {"matrix": matrix, "examples": seen, "total": total,
            "wrong": [r for _, _, r in sorted(wrong, key=lambda w: (-w[0], w[1]))]}


def per_class_precision_recall(matrix: List[List[int]], classes: List[str]) -> List[Dict[str, Any]]:
    rows = []
    for i, name in enumerate(classes):
        true_positive = matrix[i][i]
        predicted = sum(row[i] for row in matrix)
        actual = sum(matrix[i])
        rows.append({"class": name, "support": actual,
                     "precision": true_positive / predicted if predicted else None,
                     "recall": true_positive / actual if actual else None})
    return rows


def collect(output_dir: str) -> Dict[str, Any]:
    """Everything the page shows, for the latest run recorded in `<output_dir>/metadata.sqlite`."""
    from tfx_image_finetune.components.evaluator.executor import BASELINE_PROPERTY
    from tfx_image_finetune.report import run_summary

    path = metadata_path(output_dir)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no pipeline metadata at {path!r}: is {output_dir!r} a run's --output folder?")
    from tfx_image_finetune.metadata_store import check_metadata

    check_metadata(path)
    s = run_summary.store(path)
    run = latest_run_id(s)
    ctx = run.id if run else None
    data: Dict[str, Any] = {"run_id": run.name if run else "unknown", "output_dir": os.path.abspath(output_dir)}
    examples = _latest(s, "Examples", ctx)
    data["split_counts"] = split_class_counts(examples.uri) if examples else {}
    ingest = _latest(s, "tfx_image_finetune.ImageIngestReport", ctx)
    data["ingest"] = _read_json(os.path.join(ingest.uri, "report.json")) if ingest else None
    model_run = _latest(s, "ModelRun", ctx)
    history = _read_json(os.path.join(model_run.uri, "history.json")) if model_run else None
    data["history"] = history
    evaluation_artifact = _latest(s, "ModelEvaluation", ctx)
    data["evaluation"] = evaluation(evaluation_artifact.uri) if evaluation_artifact else None
    blessing = _latest(s, "ModelBlessing", ctx)
    data["blessed"] = bool(blessing and os.path.exists(os.path.join(blessing.uri, "BLESSED")))
    data["baseline"] = (blessing.custom_properties[BASELINE_PROPERTY].string_value
                        if blessing and BASELINE_PROPERTY in blessing.custom_properties else None)
    data["seconds"] = run_summary.execution_seconds(path)
    data["push"] = run_summary.push(s, ctx, data["blessed"])
    from tfx_image_finetune.components.tflite_gate.component import TFLiteEvaluation

    lite = _latest(s, TFLiteEvaluation.TYPE_NAME, ctx)  # --tflite: components/tflite_gate's evaluation.json
    data["tflite"] = _read_json(os.path.join(lite.uri, run_summary.TFLITE_EVALUATION_FILE)) if lite else None
    model = _latest(s, "Model", ctx)
    classes = (history or {}).get("classes")
    if model and classes and "test" in data["split_counts"]:
        test = test_predictions(model.uri, _examples_by_split(examples.uri)["test"], classes)
        test["per_class"] = per_class_precision_recall(test["matrix"], classes)
        data["test"] = test
    else:
        data["test"] = None
    return data


def _read_json(path: str) -> Optional[Any]:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def run_folder_name(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)


def write(output_dir: str) -> str:
    """Render the latest run's report; returns `<output>/reports/<run-id>/report.html` (also copied to
    `<output>/report.html`)."""
    from tfx_image_finetune.report.render import render

    data = collect(output_dir)
    folder = os.path.join(output_dir, REPORTS_DIR, run_folder_name(data["run_id"]))
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, REPORT_FILE)
    with open(target + ".tmp", "w", encoding="utf-8") as f:
        f.write(render(data))
    os.replace(target + ".tmp", target)
    shutil.copyfile(target, os.path.join(output_dir, REPORT_FILE))
    return target
