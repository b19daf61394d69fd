"""The run report: what a run did, gathered from its MLMD store and artifacts into one self-contained HTML page.

Written after every local run to `<output>/reports/<run-id>/report.html`, copied to `<output>/report.html`
(the latest). It reads what the components wrote rather than recomputing it: the ingest report (files, and
examples per split and class as ExampleGen counted them in Beam), the Trainer's history.json, TFMA's metrics,
confidence intervals, confusion matrix and validation result (report/evaluation.py), the blessing's baseline
note, the push. The one thing TFMA does not keep is per-example predictions, so the most confidently wrong
images, and the most confidently right ones per class, come from running the trained model's `serving_examples`
signature over the test split (the Evaluator's split) in bounded batches; each gets the heat map of what drove
its predicted class (trainer/explain.py).
"""

from __future__ import annotations

import glob
import heapq
import json
import os
import re
import shutil
from typing import Any, Dict, List, Optional

from tfx_image_finetune.data_contract import EXAMPLES_COMPRESSION
from tfx_image_finetune.report import evaluation
from tfx_image_finetune.report.evaluation import per_class_precision_recall

REPORTS_DIR, REPORT_FILE = "reports", "report.html"
PREDICT_BATCH = 64
MAX_TEST_EXAMPLES = 20000  # the gallery looks at most at this many test examples (the report says so)
GALLERY_SIZE = 8
RIGHT_PER_CLASS, MAX_RIGHT = 2, 24  # the most confident right images per class, for at most MAX_RIGHT images
# Integrated-gradient steps per baseline for the report's heat maps: half of predict --explain's, as the report
# explains up to 32 images (Xception at 150 px: ~5 s each on 2 loaded cores, benchmarks/explain_cost.py).
REPORT_STEPS = 8


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


def gallery(model_uri: str, test_files: List[str], classes: List[str], image_key: str = "image",
            label_key: str = "label") -> Dict[str, Any]:
    """The most confidently wrong test images and the most confidently right ones per class, each with its
    explanation, from the trained model's `serving_examples` signature over the test examples (TFMA keeps no
    per-example predictions): {'wrong', 'right', 'explained', 'examples': how many were looked at}."""
    import tensorflow as tf
    from tfx.utils import path_utils

    from tfx_image_finetune.data_contract import FILENAME_FEATURE
    from tfx_image_finetune.serving_contract import CLASS_IDS, EXAMPLES_SIGNATURE, PROBABILITIES

    loaded = tf.saved_model.load(path_utils.serving_model_path(model_uri))
    serve = loaded.signatures[EXAMPLES_SIGNATURE]
    index = {name: i for i, name in enumerate(classes)}
    wrong: List[tuple] = []  # min-heap of (probability, n, record)
    right: List[List[tuple]] = [[] for _ in classes]  # per predicted class, the same
    spec = {key: tf.io.FixedLenFeature([1], tf.string) for key in (image_key, label_key)}
    spec[FILENAME_FEATURE] = tf.io.FixedLenFeature([1], tf.string, default_value="")
    seen = 0
    ds = tf.data.TFRecordDataset(test_files, compression_type=EXAMPLES_COMPRESSION).take(MAX_TEST_EXAMPLES).batch(PREDICT_BATCH)
    for batch in ds:
        out = serve(examples=batch)
        raw = tf.io.parse_example(batch, spec)
        probabilities, predicted = out[PROBABILITIES].numpy(), out[CLASS_IDS].numpy()
        for i, label in enumerate(raw[label_key].numpy()[:, 0]):
            true, guess = index[label.decode()], int(predicted[i])
            p = float(probabilities[i][guess])
            record = {"true": classes[true], "predicted": classes[guess], "probability": p,
                      "file": raw[FILENAME_FEATURE].numpy()[i, 0].decode(), "image": raw[image_key].numpy()[i, 0]}
            _keep_top(wrong if guess != true else right[guess], (p, seen + i, record),
                      GALLERY_SIZE if guess != true else RIGHT_PER_CLASS)
        seen += len(predicted)
    gallery = {"wrong": _most_confident(wrong),
               "right": [r for per_class in right for r in _most_confident(per_class)][:MAX_RIGHT]}
    return {"examples": seen, **gallery,
            "explained": explain_records(loaded, gallery["wrong"] + gallery["right"], index)}


def _keep_top(heap: List[tuple], item: tuple, size: int) -> None:
    heapq.heappush(heap, item)
    if len(heap) > size:
        heapq.heappop(heap)


def _most_confident(heap: List[tuple]) -> List[Dict[str, Any]]:
    return [r for _, _, r in sorted(heap, key=lambda w: (-w[0], w[1]))]


def explain_records(loaded, records: List[Dict[str, Any]], index: Dict[str, int]) -> str:
    """Each record's "overlay" (PNG bytes: what drove its predicted class, or None); returns '' or why none has one."""
    from tfx_image_finetune.trainer.explain import explain_images, explainable

    for record in records:
        record["overlay"] = None
    if not explainable(loaded):
        return "the model was exported without the explanation functions (before they existed)"
    for record in records:
        record["overlay"] = explain_images(loaded, [record["image"]], [index[record["predicted"]]],
                                           REPORT_STEPS)[0].overlay_png
    return ""


def per_class_section(ev: Optional[Dict[str, Any]], classes: Optional[List[str]], model_uri: Optional[str],
                      test_files: Optional[List[str]]) -> Optional[Dict[str, Any]]:
    """The per-class section: TFMA's confusion matrix and the precision/recall it gives, and the gallery."""
    if not ev or ev.get("matrix") is None or not classes:
        return None
    matrix = ev["matrix"]
    total = sum(map(sum, matrix))
    test = {"matrix": matrix, "per_class": per_class_precision_recall(matrix, classes), "total": total,
            "examples": total, "wrong": [], "right": [], "explained": None}
    if model_uri and test_files:
        test.update(gallery(model_uri, test_files, classes))
    return test


def collect(output_dir: str, drift_threshold: Optional[float] = None, drift_comparator: str = "linf") -> Dict[str, Any]:
    """Everything the page shows, for the latest run recorded in `<output_dir>/metadata.sqlite`."""
    from tfx_image_finetune.components import ingest_report
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
    ingest = _latest(s, "tfx_image_finetune.ImageIngestReport", ctx)
    data["ingest"] = ingest_report.read_report(ingest.uri) if ingest else None
    # Examples per split and class as ExampleGen counted them in Beam (the closing lines read the same).
    data["split_counts"] = (data["ingest"] or {}).get("examples_per_split") or {}
    model_run = _latest(s, "ModelRun", ctx)
    history = _read_json(os.path.join(model_run.uri, "history.json")) if model_run else None
    data["history"] = history
    evaluation_artifact = _latest(s, "ModelEvaluation", ctx)
    classes = (history or {}).get("classes")
    data["evaluation"] = (evaluation.read(evaluation_artifact.uri, len(classes) if classes else None)
                          if evaluation_artifact else None)
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
    test_files = _examples_by_split(examples.uri).get("test") if examples else None
    data["test"] = per_class_section(data["evaluation"], classes, model.uri if model else None, test_files)
    ingested = (data["ingest"] or {}).get("valid_images")
    data["verdict_warnings"] = evaluation.too_small(data["evaluation"], ingested) if data["evaluation"] else []
    from tfx_image_finetune.config import DataConfig
    from tfx_image_finetune.report import drift

    data["drift"] = drift.drift(path, drift_threshold or DataConfig.drift_threshold, drift_comparator)
    return data


def _read_json(path: str) -> Optional[Any]:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def run_folder_name(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)


def write(output_dir: str, drift_threshold: Optional[float] = None, drift_comparator: str = "linf") -> str:
    """Render the latest run's report; returns `<output>/reports/<run-id>/report.html` (also copied to
    `<output>/report.html`)."""
    from tfx_image_finetune.report.render import render

    data = collect(output_dir, drift_threshold, drift_comparator)
    folder = os.path.join(output_dir, REPORTS_DIR, run_folder_name(data["run_id"]))
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, REPORT_FILE)
    with open(target + ".tmp", "w", encoding="utf-8") as f:
        f.write(render(data))
    os.replace(target + ".tmp", target)
    shutil.copyfile(target, os.path.join(output_dir, REPORT_FILE))
    return target
