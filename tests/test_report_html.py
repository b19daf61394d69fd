"""The report page for what the e2e run does not have: many classes, skipped files, imbalance, a model that was
not blessed. Rendered from the data `pipeline.report.collect` gathers (no pipeline run: a second or two)."""

import base64
import io
import re

from PIL import Image

from tfx_image_finetune.pipeline.report import per_class_precision_recall
from tfx_image_finetune.pipeline.report_html import render


def _data(n_classes):
    classes = [f"class_{i:02d}" for i in range(n_classes)]
    matrix = [[5 if i == j else (1 if j == (i + 1) % n_classes else 0) for j in range(n_classes)]
              for i in range(n_classes)]
    jpeg = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 30, 30)).save(jpeg, format="JPEG")
    epochs = [{"epoch": e, "phase": 1 if e <= 3 else 2, "loss": 1.0 / e, "accuracy": 0.5 + e / 20,
               "val_loss": 1.2 / e, "val_accuracy": 0.4 + e / 20, "trainable_params": 100 * e} for e in range(1, 6)]
    return {
        "run_id": "2026-01-01T00:00:00", "output_dir": "/tmp/out",
        "split_counts": {"train": {c: 40 + 10 * i for i, c in enumerate(classes)},
                         "selection": {c: 5 for c in classes}, "test": {c: 6 for c in classes}},
        "ingest": {"valid_images": 999, "skipped": [{"path": "cats/notes.jpg", "reason": "not an image <b>"}]},
        "history": {"epochs": epochs, "best_epoch": 4, "best_val_loss": 0.3, "classes": classes,
                    "weights": "imagenet", "class_weight": None,
                    "strategy": {"used": 2, "chosen_by": "auto", "recommended": 2, "train_images": 500,
                                 "probe_accuracy": 0.4, "chance": 1 / n_classes, "size": "small",
                                 "similarity": "dissimilar", "unfreeze": "the top 50%", "reason": "why"}},
        "evaluation": {"metrics": {"sparse_categorical_accuracy": 0.55, "example_count": 6.0 * n_classes},
                       "thresholds": {"sparse_categorical_accuracy": {"lower_bound": 0.6, "max_drop": 1e-10}},
                       "validation_ok": False, "failures": ["sparse_categorical_accuracy: below 0.6"],
                       "baseline_metrics": {}},
        "blessed": False, "baseline": "none: no blessed model yet", "seconds": {"Trainer": 12.5, "Evaluator": 3.0},
        "push": {"pushed": False, "why": "the model was not blessed"},
        "test": {"matrix": matrix, "examples": 6 * n_classes, "total": 6 * n_classes,
                 "per_class": per_class_precision_recall(matrix, classes),
                 "wrong": [{"true": classes[0], "predicted": classes[1], "probability": 0.91, "file": "a.jpg",
                            "image": jpeg.getvalue()}]},
    }


def test_many_classes_skipped_files_imbalance_and_a_model_not_blessed():
    page = render(_data(30))
    for src in re.findall(r'<img [^>]*src="([^"]+)"', page):
        Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).load()
    assert len(re.findall(r"<img ", page)) == 5  # data, curves, confusion matrix, gallery, seconds
    assert 'data-blessed="false"' in page and "NOT BLESSED" in page and 'class="bad">below' in page
    assert "Nothing pushed: the model was not blessed." in page
    assert "not an image &lt;b&gt;" in page  # the reason, escaped
    ratio = float(re.search(r'data-imbalance="([^"]+)"', page).group(1))
    assert abs(ratio - (40 + 290) / 40) < 1e-6
    assert len(re.findall(r'<tr data-class="class_', page)) == 30


def test_per_class_precision_and_recall_from_the_confusion_matrix():
    rows = per_class_precision_recall([[8, 2], [1, 4]], ["a", "b"])
    assert rows[0] == {"class": "a", "support": 10, "precision": 8 / 9, "recall": 0.8}
    assert rows[1] == {"class": "b", "support": 5, "precision": 4 / 6, "recall": 0.8}
    never = per_class_precision_recall([[0, 2], [0, 3]], ["a", "b"])[0]
    assert never["precision"] is None and never["recall"] == 0  # a: never predicted, never right
