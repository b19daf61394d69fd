"""The one reader of the Evaluator's output (report/evaluation.py) over real TFMA runs with the pipeline's
EvalConfig: the confusion matrix TFMA counts, the 95% confidence intervals, pass/fail from TFMA's
ValidationResult (judged on the value, never on the interval), and the 'test split too small' warning."""

import numpy as np
import pytest

from tfx_image_finetune.report import evaluation
from tfx_image_finetune.report.run_summary import verdict_lines
from tests.helpers import tfma_evaluation

BINARY_MATRIX = [[20, 6], [8, 23]]  # 57 test images, accuracy 43/57 = 0.754
MULTI_MATRIX = [[9, 1, 0, 0, 2], [0, 10, 2, 0, 0], [1, 0, 8, 3, 0], [0, 0, 0, 12, 0], [0, 2, 0, 0, 10]]


def _binary_predictions(matrix):
    """(labels, positive-class scores) with exactly this confusion matrix at 0.5."""
    labels, scores = [], []
    for true in (0, 1):
        for predicted in (0, 1):
            for k in range(matrix[true][predicted]):
                labels.append(true)
                scores.append([0.55 + 0.01 * (k % 40) if predicted else 0.45 - 0.01 * (k % 40)])
    return labels, scores


def _multi_predictions(matrix):
    labels, scores = [], []
    n = len(matrix)
    for true in range(n):
        for predicted in range(n):
            for _ in range(matrix[true][predicted]):
                p = np.full(n, 0.4 / (n - 1))
                p[predicted] = 0.6
                labels.append(true)
                scores.append(p.tolist())
    return labels, scores


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    labels, scores = _binary_predictions(BINARY_MATRIX)
    return evaluation.read(tfma_evaluation(str(tmp_path_factory.mktemp("binary")), labels, scores, 2, 0.5))


@pytest.fixture(scope="module")
def multi_just_below(tmp_path_factory):
    """Five classes, the threshold a hair above the accuracy: inside its confidence interval."""
    labels, scores = _multi_predictions(MULTI_MATRIX)
    accuracy = sum(MULTI_MATRIX[i][i] for i in range(5)) / len(labels)
    folder = tfma_evaluation(str(tmp_path_factory.mktemp("multi")), labels, scores, 5, accuracy + 0.001)
    return evaluation.read(folder, num_classes=5), accuracy


@pytest.mark.slow  # a real TFMA run (~20 s here)
def test_the_binary_confusion_matrix_and_metrics_are_tfmas(binary):
    assert binary["matrix"] == BINARY_MATRIX
    assert binary["metrics"]["example_count"] == 57
    assert binary["metrics"]["binary_accuracy"] == pytest.approx(43 / 57)
    rows = evaluation.per_class_precision_recall(binary["matrix"], ["cats", "dogs"])
    assert rows[1]["precision"] == pytest.approx(binary["metrics"]["precision"])  # TFMA's own, for class 1
    assert rows[1]["recall"] == pytest.approx(binary["metrics"]["recall"])
    assert rows[0] == {"class": "cats", "support": 26, "precision": 20 / 28, "recall": 20 / 26}


@pytest.mark.slow  # a real TFMA run (~20 s here)
def test_each_test_metric_has_a_95_percent_interval_around_it(binary):
    low, high = binary["intervals"]["binary_accuracy"]
    value = binary["metrics"]["binary_accuracy"]
    assert low < value < high
    # The binomial 95% half-width at 0.754 over 57 images is 0.11; TFMA's jackknife gives the same order.
    assert 0.05 < (high - low) / 2 < 0.2
    assert "example_count" not in binary["intervals"]  # a count has no interval
    assert all(0 <= low <= high <= 1 for low, high in binary["intervals"].values())  # rates: clipped to 0-1
    assert binary["validation_ok"] is True and binary["failed"] == set()


@pytest.mark.slow  # a real TFMA run (~20 s here)
def test_the_threshold_is_judged_on_the_value_not_the_interval(multi_just_below):
    """The Evaluator's verdict stays what it was before the intervals: a value below the threshold fails even
    when the interval reaches above it, and the reader says so from TFMA's ValidationResult."""
    ev, accuracy = multi_just_below
    assert ev["matrix"] == MULTI_MATRIX
    assert ev["metrics"]["sparse_categorical_accuracy"] == pytest.approx(accuracy)
    low, high = ev["intervals"]["sparse_categorical_accuracy"]
    threshold = ev["thresholds"]["sparse_categorical_accuracy"]["lower_bound"]
    assert low < threshold < high
    assert ev["validation_ok"] is False and ev["failed"] == {"sparse_categorical_accuracy"}
    assert "sparse_categorical_accuracy" in ev["failures"][0]


@pytest.mark.slow  # a real TFMA run (~20 s here)
def test_the_closing_lines_give_the_interval_and_warn_on_a_small_test_split(binary, multi_just_below):
    lines = verdict_lines(binary, total_images=1000)
    low, high = binary["intervals"]["binary_accuracy"]
    assert lines[0] == f"Test: binary_accuracy 0.754 (95% CI {low:.2f}-{high:.2f}, 57 images)"
    assert lines[1].startswith("WARNING: the test split (57 images) is too small for the threshold decision")
    assert "points wide" in lines[1] and "holds the threshold" not in lines[1]  # 0.5 is far below
    assert "about 285 test images" in lines[1] and "1000 images, --split 61,10,29" in lines[1]
    multi, _ = multi_just_below
    warning = verdict_lines(multi, total_images=None)[1]
    assert "holds the threshold" in warning


def test_no_warning_when_the_interval_is_narrow_and_clear_of_the_threshold():
    ev = {"metrics": {"binary_accuracy": 0.96, "example_count": 500.0},
          "intervals": {"binary_accuracy": (0.943, 0.977)},
          "thresholds": {"binary_accuracy": {"lower_bound": 0.5, "max_drop": 1e-10}}}
    assert evaluation.too_small(ev, 2500) == []
    assert verdict_lines(ev, 2500) == ["Test: binary_accuracy 0.960 (95% CI 0.94-0.98, 500 images)"]


def test_the_split_suggestion_follows_the_data_size():
    assert evaluation.test_images_needed(0.75) == 289  # 1.96^2 x 0.75 x 0.25 / 0.05^2
    assert evaluation.test_images_needed(0.99) == evaluation.test_images_needed(0.9)  # clipped
    assert "--split 78,10,12" in evaluation.suggestion(0.75, 2500)
    assert "add images" in evaluation.suggestion(0.75, 600) and "--split" not in evaluation.suggestion(0.75, 600)


def test_a_perfect_score_on_few_images_still_warns():
    """The jackknife's interval is 0 wide when every image is right; 26 images are still too few."""
    ev = {"metrics": {"binary_accuracy": 1.0, "example_count": 26.0}, "intervals": {"binary_accuracy": (1.0, 1.0)},
          "thresholds": {"binary_accuracy": {"lower_bound": 0.5, "max_drop": 1e-10}}}
    [warning] = evaluation.too_small(ev, 240)
    assert "(26 images)" in warning and "fewer images than a +-5-point interval needs" in warning
    assert "about 139 test images" in warning and "add images" in warning
