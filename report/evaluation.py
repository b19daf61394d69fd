"""What the Evaluator (TFMA) wrote, read once with TFMA's own loaders: the one reader of its output.

The closing lines and the report both take from here: the overall slice's metrics with their 95% confidence
intervals (TFMA's jackknife, `pipeline.eval_config`), the baseline's metrics and the changes, the confusion
matrix TFMA counted over the test split, the thresholds of the saved EvalConfig, and pass/fail as TFMA's
ValidationResult says (never re-judged here). It also says when the test split is too small for the
threshold decision to mean much (docs/operations.md).
"""

from __future__ import annotations

import math
import re
from typing import Any, Dict, List, Optional, Tuple

# The test split is "too small for the verdict" when the gated metric's 95% CI is wider than this either side
# of the value, or holds the threshold (another test split of the same size could decide the other way).
MAX_CI_HALF_WIDTH = 0.05
Z_95 = 1.96
MAX_SUGGESTED_TEST_PERCENT = 40  # above this, holding out more is no answer: the data set is too small


def read(evaluation_uri: str, num_classes: Optional[int] = None) -> Dict[str, Any]:
    """{'metrics': {name: value} (candidate, overall slice; TFMA's changes as '<name>_diff'),
    'intervals': {name: (lower, upper)}, 'baseline_metrics', 'matrix' (rows: true class id, columns: predicted),
    'thresholds': {name: {'lower_bound', 'max_drop'}}, 'validation_ok' (None: nothing was gated),
    'failures': ['name: message'], 'failed': {name}} from an Evaluator's output folder."""
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.writers import eval_config_writer

    config = eval_config_writer.load_eval_run(evaluation_uri)[0]
    baseline = baseline_model_name(config)
    out: Dict[str, Any] = {"metrics": {}, "intervals": {}, "baseline_metrics": {}, "matrix": None,
                           "thresholds": thresholds(config), "validation_ok": None, "failures": [], "failed": set()}
    for per_slice in tfma.load_metrics(evaluation_uri):
        if per_slice.slice_key.single_slice_keys:
            continue  # the overall slice only
        for kv in per_slice.metric_keys_and_values:
            _add_metric(out, kv, baseline)
    if out["matrix"] is None:
        for per_slice in tfma.load_plots(evaluation_uri):
            if not per_slice.slice_key.single_slice_keys:
                for kv in per_slice.plot_keys_and_values:
                    if kv.key.model_name != baseline and kv.value.HasField("multi_class_confusion_matrix_at_thresholds"):
                        out["matrix"] = _multi_class_matrix(kv.value.multi_class_confusion_matrix_at_thresholds,
                                                            num_classes)
    try:
        validation = tfma.load_validation_result(evaluation_uri)
    except Exception:  # no validation file: nothing was gated
        return out
    out["validation_ok"] = bool(validation.validation_ok)
    for per_slice in validation.metric_validations_per_slice:
        for failure in per_slice.failures:
            out["failures"].append(f"{failure.metric_key.name}: {failure.message}")
            out["failed"].add(failure.metric_key.name + ("_diff" if failure.metric_key.is_diff else ""))
    return out


def _add_metric(out: Dict[str, Any], kv, baseline: Optional[str]) -> None:
    key, value = kv.key, kv.value
    if key.HasField("sub_key"):
        return
    if value.HasField("confusion_matrix_at_thresholds"):
        if key.model_name != baseline and not key.is_diff:
            out["matrix"] = _binary_matrix(value.confusion_matrix_at_thresholds.matrices[0])
        return
    if not value.HasField("double_value"):
        return
    number = value.double_value.value
    if key.model_name == baseline and baseline is not None:
        out["baseline_metrics"][key.name] = number
    elif key.is_diff:
        out["metrics"][f"{key.name}_diff"] = number
    else:
        out["metrics"][key.name] = number
        interval = kv.confidence_interval
        if kv.HasField("confidence_interval") and interval.lower_bound.HasField("double_value"):
            # TFMA's t-interval is symmetric around the resampled mean; every metric here is a rate in 0-1
            # (seen: AUC -0.03-0.74, precision 0.04-1.16 on 13 images), so the interval is clipped to it.
            out["intervals"][key.name] = (max(0.0, interval.lower_bound.double_value.value),
                                          min(1.0, interval.upper_bound.double_value.value))


def _binary_matrix(m) -> List[List[int]]:
    """TFMA's counts at the 0.5 threshold as [[TN, FP], [FN, TP]] (class 1 is the positive class)."""
    return [[round(m.true_negatives), round(m.false_positives)],
            [round(m.false_negatives), round(m.true_positives)]]


def _multi_class_matrix(plot, num_classes: Optional[int]) -> List[List[int]]:
    """TFMA lists only the non-zero cells: a class never seen nor predicted is there only given num_classes."""
    entries = plot.matrices[0].entries
    n = max([num_classes or 0] + [1 + max(e.actual_class_id, e.predicted_class_id) for e in entries])
    matrix = [[0] * n for _ in range(n)]
    for e in entries:
        if e.predicted_class_id >= 0:  # -1: no class above the plot's threshold (0.0: never for a softmax)
            matrix[e.actual_class_id][e.predicted_class_id] += round(e.num_weighted_examples)
    return matrix


def baseline_model_name(eval_config) -> Optional[str]:
    """The baseline's model name in an evaluation's (saved) EvalConfig, or None if it had no baseline."""
    specs = eval_config.model_specs if eval_config is not None else []
    return next((spec.name for spec in specs if spec.is_baseline), None)


def thresholds(eval_config) -> Dict[str, Dict[str, Optional[float]]]:
    """{metric name: {'lower_bound', 'max_drop'}} as the EvalConfig the Evaluator ran with sets them."""
    out = {}
    for spec in (eval_config.metrics_specs if eval_config is not None else []):
        for metric in spec.metrics:
            if metric.HasField("threshold"):
                t = metric.threshold
                out[_snake(metric.class_name)] = {
                    "lower_bound": t.value_threshold.lower_bound.value if t.value_threshold.HasField("lower_bound")
                    else None,
                    "max_drop": -t.change_threshold.absolute.value if t.change_threshold.HasField("absolute")
                    else None,
                }
    return out


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def per_class_precision_recall(matrix: List[List[int]], classes: List[str]) -> List[Dict[str, Any]]:
    """Per class, from TFMA's confusion matrix: so that they agree with it (argmax; 0.5 for two classes)."""
    rows = []
    for i, name in enumerate(classes):
        true_positive = matrix[i][i]
        predicted = sum(row[i] for row in matrix)
        actual = sum(matrix[i])
        rows.append({"class": name, "support": actual,
                     "precision": true_positive / predicted if predicted else None,
                     "recall": true_positive / actual if actual else None})
    return rows


def gated(ev: Dict[str, Any]) -> List[Tuple[str, float, Optional[Tuple[float, float]], Optional[float]]]:
    """(name, value, 95% CI or None, lower bound) of each metric the Evaluator judges with a value threshold."""
    return [(name, ev["metrics"][name], ev["intervals"].get(name), t["lower_bound"])
            for name, t in sorted(ev["thresholds"].items()) if name in ev["metrics"] and t["lower_bound"] is not None]


def with_interval(name: str, value: float, interval: Optional[Tuple[float, float]], images: Optional[float]) -> str:
    """'binary_accuracy 0.754 (95% CI 0.64-0.86, 57 images)'."""
    parts = [f"95% CI {interval[0]:.2f}-{interval[1]:.2f}"] if interval else []
    if images is not None:
        parts.append(f"{int(images)} images")
    return f"{name} {value:.3f}" + (f" ({', '.join(parts)})" if parts else "")


def too_small(ev: Dict[str, Any], total_images: Optional[int] = None) -> List[str]:
    """Warnings (without 'WARNING: ') when the test split is too small for the threshold decision to mean much:
    a gated metric's 95% CI is wider than +-MAX_CI_HALF_WIDTH, or holds its threshold, or comes from fewer
    images than a +-MAX_CI_HALF_WIDTH binomial interval needs. Each names the test images a +-5-point interval
    needs and, given the data set's size, the --split that would hold them out."""
    images = ev["metrics"].get("example_count")
    out = []
    for name, value, interval, lower in gated(ev):
        if interval is None or math.isnan(value):
            continue
        low, high = interval
        why = []
        if (high - low) / 2 > MAX_CI_HALF_WIDTH:
            why.append(f"+-{(high - low) / 2 * 100:.0f} points wide")
        if low <= lower <= high:
            why.append(f"holds the threshold {lower:g}")
        if not why and (images or 0) < test_images_needed(value):
            why.append(f"from fewer images than a +-{MAX_CI_HALF_WIDTH * 100:.0f}-point interval needs "
                       f"(a resampled interval is too narrow on few images, e.g. 0 wide at accuracy 1)")
        if why:
            out.append(f"the test split ({int(images or 0)} images) is too small for the threshold decision to "
                       f"mean much: {name}'s 95% CI {low:.2f}-{high:.2f} is {' and '.join(why)}. "
                       + suggestion(value, total_images))
    return out


def test_images_needed(accuracy: float, half_width: float = MAX_CI_HALF_WIDTH) -> int:
    """Test images for a 95% interval of +-half_width around an accuracy (normal approximation, the accuracy
    clipped to 0.1-0.9 so that a near-perfect score does not ask for a handful)."""
    p = min(max(accuracy, 0.1), 0.9)
    return math.ceil((Z_95 / half_width) ** 2 * p * (1 - p))


def suggestion(accuracy: float, total_images: Optional[int]) -> str:
    needed = test_images_needed(accuracy)
    text = f"A +-{MAX_CI_HALF_WIDTH * 100:.0f}-point interval needs about {needed} test images"
    if not total_images:
        return text + "."
    percent = math.ceil(100 * needed / total_images)
    if percent > MAX_SUGGESTED_TEST_PERCENT:
        return text + f": more than {MAX_SUGGESTED_TEST_PERCENT}% of these {total_images} images; add images."
    selection = 10
    return (text + f": for these {total_images} images, --split {100 - selection - percent},{selection},{percent} "
            f"(an unsplit folder), or that many images in test/.")
