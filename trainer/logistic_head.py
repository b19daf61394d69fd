"""Phase 1 as one L2-regularised logistic regression on the cached features (--head-fit logistic).

With few images, choosing among 20 head epochs by the lowest loss on a selection split of a few dozen images
is noise, and it tends to stop early (the loss turns up on a handful of confident mistakes while accuracy still
rises). A linear classifier on frozen pretrained features is a convex problem: its optimum is found exactly
(scikit-learn's lbfgs), and the one choice left, the L2 strength, is picked from a short grid by the selection
split's log-loss: 5 candidates instead of 20 epochs of weights. The solution becomes the model's Dense weights
(the standardisation folded in), so phase 2 fine-tunes from it as from an Adam-trained head.
"""

from __future__ import annotations

import logging
from typing import Dict, Tuple

import numpy as np

log = logging.getLogger(__name__)

L2_GRID = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)  # penalty per training example, as trainer/strategy.py's probe


def fit(train: Tuple[np.ndarray, np.ndarray], selection: Tuple[np.ndarray, np.ndarray], num_classes: int,
        seed: int = 0, refit: int = 0) -> Dict:
    """{"kernel" [D, 1 or K], "bias", "l2", "selection_loss" per l2}: the Dense layer's weights of the best fit.
    `refit` > 0: the chosen penalty is fitted again on train + selection, each selection row `refit` times (as
    many rows as each training image has views)."""
    from sklearn.metrics import log_loss

    x, y = np.asarray(train[0], np.float64), np.asarray(train[1]).reshape(-1).astype(np.int64)
    sx, sy = np.asarray(selection[0], np.float64), np.asarray(selection[1]).reshape(-1).astype(np.int64)
    losses, fits = {}, {}
    for l2 in L2_GRID:
        fits[l2] = _Standardised(x, y, l2, seed)
        losses[l2] = float(log_loss(sy, fits[l2].probabilities(sx), labels=list(range(num_classes))))
    best = min(L2_GRID, key=lambda l2: (losses[l2], -l2))  # ties: the stronger penalty
    chosen = fits[best]
    if refit:
        chosen = _Standardised(np.concatenate([x, np.repeat(sx, refit, axis=0)]),
                               np.concatenate([y, np.repeat(sy, refit)]), best, seed)
    kernel, bias = chosen.dense_weights()
    return {"kernel": kernel, "bias": bias, "l2": best,
            "selection_loss": {str(k): round(v, 4) for k, v in losses.items()}}


class _Standardised:
    """scikit-learn's L2 logistic regression on standardised features (penalty per example)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, l2: float, seed: int):
        from sklearn.linear_model import LogisticRegression

        self.mean, self.std = x.mean(axis=0), x.std(axis=0) + 1e-6
        self.model = LogisticRegression(C=1.0 / (l2 * len(y)), max_iter=2000, random_state=seed)
        self.model.fit((x - self.mean) / self.std, y)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict_proba((x - self.mean) / self.std)

    def dense_weights(self) -> Tuple[np.ndarray, np.ndarray]:
        """(kernel [D, 1 or K], bias): the standardisation folded in; two classes: class 1's logit."""
        coef, intercept = self.model.coef_, self.model.intercept_
        kernel = (coef / self.std).T
        bias = intercept - (coef * (self.mean / self.std)).sum(axis=1)
        return kernel.astype(np.float32), bias.astype(np.float32)


def fit_head(head, train, selection, num_classes: int, seed: int, refit: int = 0) -> Dict:
    """Fits, sets `head`'s Dense ("logits") weights, returns what history.json records of it."""
    from tfx_image_finetune.trainer.cached_features import LOGITS_LAYER

    found = fit(train, selection, num_classes, seed, refit)
    head.get_layer(LOGITS_LAYER).set_weights([found["kernel"], found["bias"]])
    log.info("phase 1: logistic regression on %d cached feature rows, L2 %g chosen by the selection split's "
             "log-loss (%s)%s", len(train[0]), found["l2"], found["selection_loss"],
             f"; refitted with the selection rows ({len(selection[0])} x {refit})" if refit else "")
    return {"l2": found["l2"], "selection_loss": found["selection_loss"]}
