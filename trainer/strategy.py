"""Which fine-tuning strategy the data calls for: data size x similarity to ImageNet (the recipe's chart).

- Size: the number of training images; "small" under SMALL_DATA = 1,000 (the recipe's own rule of thumb).
- Similarity: how well a linear probe separates the classes on the frozen backbone's pooled features (a sample
  of the train split, cross-validated, scikit-learn's logistic regression: seconds on CPU). Pretrained
  features that already separate the classes mean the data looks like what the backbone learned; features
  that do not mean the backbone's layers must change. The probe's accuracy is normalised by chance,
  (accuracy - 1/k) / (1 - 1/k), so that 0 is chance and 1 is perfect for any class count k.
  SIMILAR_SCORE = 0.5 (binary: 75 % probe accuracy) is halfway between what benchmarks/strategy_probe.py
  measured (2 CPU cores, 300 images, 160 px, ImageNet MobileNetV2-0.35): cats vs dogs scores 0.88 (probe
  0.939); noise textures told apart only by the phase of a faint 1-pixel checkerboard score -0.10 (0.452),
  as does noise with random labels (+0.00, 0.502): features that do not describe the classes.

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
PROBE_REPEATS = 5
PROBE_L2 = 1e-2  # the probe's L2 penalty per training example (weight decay on the mean cross-entropy)
UNFREEZE = {"large": 0.25, "small": 0.5}  # strategy 2: fraction of the base's layers trained in phase 2


def probe_accuracy(features: np.ndarray, labels: Sequence[int], num_classes: int, folds: int = PROBE_FOLDS,
                   seed: int = 0, l2: float = PROBE_L2, repeats: int = PROBE_REPEATS) -> Optional[float]:
    """Cross-validated accuracy of a linear classifier on `features` (one row per image): the mean held-out
    accuracy over `repeats` seeded, stratified `folds`-fold splits (repeated: one split's luck moves a
    400-image probe by a few points). None when a class has fewer than two images (no fold could both train
    on it and test it). `num_classes` is the task's; the fit takes the classes from `labels`.

    Standardised features, multinomial logistic regression (lbfgs) with an L2 penalty of `l2` per training
    example: scikit-learn's C weighs the *summed* loss against the penalty, so C = 1 / (l2 * training rows).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    per_class = np.bincount(y)[np.bincount(y) > 0]
    splits = min(folds, int(per_class.min()))
    if len(per_class) < 2 or splits < 2:
        return None
    classifier = make_pipeline(StandardScaler(), LogisticRegression(C=splits / (l2 * len(y) * (splits - 1)),
                                                                    max_iter=1000))
    cv = RepeatedStratifiedKFold(n_splits=splits, n_repeats=repeats, random_state=seed)
    return float(cross_val_score(classifier, x, y, cv=cv).mean())


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
