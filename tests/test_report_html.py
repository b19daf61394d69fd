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
