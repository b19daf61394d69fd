"""--strategy auto: the linear probe and the chart's decision (scikit-learn on numpy arrays, no TensorFlow: a second)."""

import numpy as np
import pytest

from tfx_image_finetune.trainer.strategy import SIMILAR_SCORE, SMALL_DATA, decide, describe, probe_accuracy, similarity_score


def _features(separable: bool, n=200, k=2, dim=64, seed=0):
    """Feature rows whose class is (separable) or is not (noise) written in a few directions."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % k
    x = rng.normal(size=(n, dim))
    if separable:
        x[:, :k] += 4.0 * np.eye(k)[labels]
    return x, labels


@pytest.mark.parametrize("k", [2, 5])
def test_the_probe_separates_what_the_features_separate_and_not_noise(k):
    x, y = _features(True, k=k)
    assert probe_accuracy(x, y, k) > 0.9
    x, y = _features(False, k=k)
    assert abs(probe_accuracy(x, y, k) - 1 / k) < 0.15  # chance: nothing to find
    assert similarity_score(1 / k, k) == pytest.approx(0.0) and similarity_score(1.0, k) == 1.0


@pytest.mark.parametrize("images, probe, strategy, fraction", [
    (5000, 0.55, 1, None),   # large & dissimilar: unfreeze all
    (5000, 0.97, 2, 0.25),   # large & similar: the top quarter
    (300, 0.55, 2, 0.5),     # small & dissimilar: deeper, the top half
    (300, 0.97, 3, None),    # small & similar: head only
])
def test_the_chart_quadrant_from_size_and_similarity(images, probe, strategy, fraction):
    d = decide(images, probe, 2)
    assert (d["used"], d["recommended"], d["unfreeze_fraction"]) == (strategy, strategy, fraction)
    assert d["chosen_by"] == "auto" and str(images) in d["reason"] and f"{probe:.3f}" in d["reason"]
    assert f"Strategy {strategy} (auto" in describe(d)


def test_thresholds_sit_where_documented():
    assert decide(SMALL_DATA - 1, 1.0, 2)["size"] == "small" and decide(SMALL_DATA, 1.0, 2)["size"] == "large"
    binary_at_threshold = 0.5 + SIMILAR_SCORE / 2
    assert decide(100, binary_at_threshold, 2)["similarity"] == "similar"
    assert decide(100, binary_at_threshold - 0.01, 2)["similarity"] == "dissimilar"
    # Normalised by chance: 60 % is far from chance among ten classes, near it between two.
    assert decide(100, 0.6, 10)["similarity"] == "similar" and decide(100, 0.6, 2)["similarity"] == "dissimilar"


def test_a_given_strategy_wins_and_the_recommendation_is_still_reported():
    d = decide(300, 0.97, 2, given=1)
    assert (d["used"], d["recommended"], d["chosen_by"]) == (1, 3, "given (--strategy 1)")
    d = decide(300, 0.97, 2, given=2, unfreeze_fraction=0.1)
    assert d["unfreeze_fraction"] == 0.1 and "10%" in d["unfreeze"]
