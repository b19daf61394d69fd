"""Which fine-tuning strategy the data calls for: data size x similarity to ImageNet (the recipe's chart).

- Size: the number of training images; "small" under SMALL_DATA = 1,000 (the recipe's own rule of thumb).
- Similarity: how well a linear probe separates the classes on the frozen backbone's pooled features (a sample
  of the train split, cross-validated, numpy softmax regression: seconds on CPU). Pretrained features that
  already separate the classes mean the data looks like what the backbone learned; features that do not
  mean the backbone's layers must change. The probe's accuracy is normalised by chance,
  (accuracy - 1/k) / (1 - 1/k), so that 0 is chance and 1 is perfect for any class count k.
  SIMILAR_SCORE = 0.5 (binary: 75 % probe accuracy) is halfway between what benchmarks/strategy_probe.py
  measured (2 CPU cores, 300 images, 160 px, ImageNet MobileNetV2-0.35): cats vs dogs scores 0.87 (probe
  0.933); noise textures told apart only by the phase of a faint 1-pixel checkerboard score -0.03 (0.487),
  as does noise with random labels (+0.05, 0.523): features that do not describe the classes.

Chart: large & dissimilar -> 1 (unfreeze all); large & similar -> 2, top quarter; small & dissimilar -> 2,
top half (deeper: the features must change, but too little data for the whole base); small & similar -> 3.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

from tfx_image_finetune.config import AUTO_STRATEGY, Strategy

import numpy as np

SMALL_DATA = 1000
SIMILAR_SCORE = 0.5
PROBE_SAMPLE = 400  # training images the probe looks at (seconds on CPU)
PROBE_FOLDS = 4
UNFREEZE = {"large": 0.25, "small": 0.5}  # strategy 2: fraction of the base's layers trained in phase 2


def fit_softmax(x: np.ndarray, y: np.ndarray, k: int, l2: float = 1e-2, steps: int = 300,
                lr: float = 0.5) -> np.ndarray:
    """Multinomial logistic regression by full-batch gradient descent; x standardised, bias column appended."""
    w = np.zeros((x.shape[1], k))
    onehot = np.eye(k)[y]
    for _ in range(steps):
        logits = x @ w
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        w -= lr * (x.T @ (p - onehot) / len(x) + l2 * w)
    return w


def probe_accuracy(features: np.ndarray, labels: Sequence[int], num_classes: int, folds: int = PROBE_FOLDS,
                   seed: int = 0) -> float:
    """Cross-validated accuracy of a linear classifier on `features` (one row per image)."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    x, y = x[order], y[order]
    correct = 0
    for fold in range(folds):
        test = np.arange(len(y)) % folds == fold
        mean, std = x[~test].mean(axis=0), x[~test].std(axis=0) + 1e-6
        prep = lambda a: np.hstack([(a - mean) / std, np.ones((len(a), 1))])  # noqa: E731
        w = fit_softmax(prep(x[~test]), y[~test], num_classes)
        correct += int((np.argmax(prep(x[test]) @ w, axis=1) == y[test]).sum())
    return correct / len(y)


def similarity_score(accuracy: float, num_classes: int) -> float:
    chance = 1.0 / num_classes
    return (accuracy - chance) / (1.0 - chance)


def decide(train_images: int, probe: Optional[float], num_classes: int, given: Any = "auto",
           unfreeze_fraction: Optional[float] = None) -> Dict[str, Any]:
    """The chart's quadrant and strategy for the measured inputs; `given` (1/2/3) overrides, the recommendation
    is still reported. Returns what history.json, the run summary and the report show."""
    size = "small" if train_images < SMALL_DATA else "large"
    score = similarity_score(probe, num_classes) if probe is not None else None
    similar = score is not None and score >= SIMILAR_SCORE
    similarity = "unknown" if score is None else ("similar" if similar else "dissimilar")
    recommended = {("large", False): Strategy.WHOLE_NETWORK, ("large", True): Strategy.UPPER_LAYERS,
                   ("small", False): Strategy.UPPER_LAYERS, ("small", True): Strategy.CLASSIFIER_ONLY}[(size, similar)]
    auto = given in (None, AUTO_STRATEGY)
    used = recommended if auto else Strategy(int(given))
    fraction = UNFREEZE[size] if auto else unfreeze_fraction
    unfreeze = {Strategy.WHOLE_NETWORK: "the whole base",
                Strategy.UPPER_LAYERS: f"the top {fraction:.0%} of the base's layers" if fraction else
                "the base from the given layer",
                Strategy.CLASSIFIER_ONLY: "nothing (head only, no phase 2)"}[used]
    reason = (f"{train_images} training images ({size}: the threshold is {SMALL_DATA}); linear-probe accuracy "
              + ("not measured" if probe is None else
                 f"{probe:.3f}, {score:.2f} of the way from chance to perfect ({similarity}: the threshold is "
                 f"{SIMILAR_SCORE})")
              + f"; the chart recommends strategy {recommended}.")
    return {"used": int(used), "chosen_by": "auto" if auto else f"given (--strategy {used})", "recommended": int(recommended),
            "train_images": train_images, "probe_accuracy": probe, "chance": 1.0 / num_classes,
            "similarity_score": score, "size": size, "similarity": similarity,
            "unfreeze_fraction": fraction if used == Strategy.UPPER_LAYERS else None, "unfreeze": unfreeze, "reason": reason,
            "thresholds": {"small_data": SMALL_DATA, "similar_score": SIMILAR_SCORE}}


def describe(decision: Dict[str, Any]) -> str:
    """One line for the run summary."""
    return f"Strategy {decision['used']} ({decision['chosen_by']}; phase 2 unfreezes {decision['unfreeze']}): " \
           f"{decision['reason']}"
