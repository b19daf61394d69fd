"""The report page for what the e2e run does not have: many classes, skipped files, imbalance, a model that was
not blessed. Rendered from the data `pipeline.report.collect` gathers (no pipeline run: a second or two)."""

import base64
import io
import re

from PIL import Image

from tfx_image_finetune.report.evaluation import per_class_precision_recall
from tfx_image_finetune.report.render import render
from tests.helpers import report_data


def test_many_classes_skipped_files_imbalance_and_a_model_not_blessed():
    page = render(report_data(30))
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


def test_the_tflite_model_beside_the_saved_model_and_a_refusal_in_the_closing_line():
    from tfx_image_finetune.components.tflite_gate.executor import verdict
    from tfx_image_finetune.report.run_summary import tflite_line

    measured = {"examples": 500, "saved_model_accuracy": 0.95, "tflite_accuracy": 0.93, "agreement": 0.96,
                "tflite_bytes": 600_000, "saved_model_bytes": 4_500_000, "tflite_ms_per_image": 2.5,
                "saved_model_ms_per_image": 9.0, "export": {"mode": "int8"}}
    refused = verdict(measured, 0.01)
    assert not refused["passed"] and "(2.0 points below; allowed 1.0 below)" in refused["reason"]
    data = {**report_data(2), "tflite": refused}
    page = render(data)
    assert 'data-tflite-passed="0"' in page and "<th>TFLite (int8)</th>" in page and "NOT pushed" in page
    assert "<td>0.9500</td><td>0.9300</td>" in page and "<td>4.50 MB</td><td>0.60 MB</td>" in page
    assert "<td>9.0 ms</td><td>2.5 ms</td>" in page and "96.0%" in page
    line = tflite_line(refused, {"pushed": True, "version": "1", "destination": "/s/m/1"})
    assert line.startswith("TFLite (int8) NOT pushed: TFLite accuracy 0.9300 vs SavedModel 0.9500")
    assert line.endswith("(the SavedModel push is unaffected)")
    passed = verdict({**measured, "tflite_accuracy": 0.945}, 0.01)
    assert passed["passed"] and 'data-tflite-passed="1"' in render({**report_data(2), "tflite": passed,
                                                                     "push": {"pushed": True, "version": "1",
                                                                              "destination": "/s", "tflite": "pushed"}})
    assert tflite_line(passed, {"pushed": True, "destination": "/s/m/1", "tflite": "pushed"}).endswith(
        "pushed: /s/m/1/tflite/model.tflite")
    assert "No TFLite export" in render(report_data(2))


def test_the_report_says_which_weights_were_kept_and_when_the_selection_figures_are_not_held_out():
    from tfx_image_finetune.report.render import kept_weights

    assert kept_weights({"best_epoch": 3, "best_val_loss": 0.25, "selection": "val_loss"}) == (
        "Restored weights: epoch 3 (lowest selection loss 0.2500)")
    assert kept_weights({"best_epoch": 11, "selection": "last", "refit": False}) == "Kept weights: the last epoch (11)"
    refitted = kept_weights({"best_epoch": 11, "selection": "last", "refit": True})
    assert refitted.startswith("Kept weights: the last epoch (11) after the selection split joined the training")
