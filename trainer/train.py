"""The two training phases of the recipe, with early stopping and the best weights kept across both."""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from tfx_image_finetune.trainer.keras2 import keras, tf

from tfx_image_finetune.config import ModelConfig, Strategy, TrainingConfig
from tfx_image_finetune.trainer.cached_features import cached_phase_one
from tfx_image_finetune.trainer.model import compile_model, set_phase

log = logging.getLogger(__name__)


class EpochClock(keras.callbacks.Callback):
    """Each epoch's wall time, validation included, and its training steps (history.json's `epoch_seconds`,
    `steps`: on several workers, each worker's steps are the same global steps)."""

    def __init__(self):
        super().__init__()
        self.seconds: List[float] = []
        self.steps: List[int] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):  # no batch hook: Keras then skips its per-batch Python calls
        self.seconds.append(round(time.monotonic() - self._start, 2))
        self.steps.append(int(self.params.get("steps") or 0))


class KeepBestWeights(keras.callbacks.Callback):
    """Remembers the weights of the epoch with the lowest val_loss over both phases; `restore` puts them back.

    Keras' own EarlyStopping(restore_best_weights) only looks within one fit() call, so a fine-tuning phase
    that never beats the head-only phase would otherwise keep its own (worse) last weights.
    """

    def __init__(self, model: keras.Model, monitor: str = "val_loss"):
        super().__init__()
        self.whole_model = model  # snapshots the whole model, also while only its head is fitted
        self.monitor = monitor
        self.best = math.inf
        self.best_epoch = -1
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and value < self.best:
            self.best, self.best_epoch = float(value), epoch
            self.best_weights = self.whole_model.get_weights()

    def restore(self) -> None:
        if self.best_weights is not None:
            self.whole_model.set_weights(self.best_weights)


def phases(model_cfg: ModelConfig, training_cfg: TrainingConfig) -> List[Tuple[int, int, float]]:
    """(phase, epochs, learning rate) to run: the head, then fine-tuning unless CLASSIFIER_ONLY or 0 epochs."""
    planned = [(1, training_cfg.head_epochs, training_cfg.head_learning_rate)]
    if model_cfg.strategy != Strategy.CLASSIFIER_ONLY and training_cfg.finetune_epochs > 0:
        planned.append((2, training_cfg.finetune_epochs, training_cfg.finetune_learning_rate))
    return planned


def train_two_phases(
    model: keras.Model,
    base: keras.Model,
    train_ds: tf.data.Dataset,
    eval_ds: tf.data.Dataset,
    num_classes: int,
    model_cfg: ModelConfig,
    training_cfg: TrainingConfig,
    log_dir: str,
    distribution: Optional[tf.distribute.Strategy] = None,
    class_weight: Optional[Dict[int, float]] = None,
    feature_budget_bytes: Optional[int] = None,
    train_examples: Optional[int] = None,
    refit_ds: Optional[tf.data.Dataset] = None,
    refit_examples: Optional[int] = None,
) -> Dict[str, Any]:
    """Phase 1 (head, Adam(head_lr)); phase 2 (unfrozen per strategy, Adam(finetune_lr)), epochs continuing.

    With `training_cfg.feature_views` > 0, phase 1 fits the head on cached base outputs (cached_features),
    within `feature_budget_bytes`. `seconds` in the result: computing features and each phase's fit.
    With `train_examples` known, the image epochs run over one repeated iterator (`steps_per_epoch` of one
    pass): Keras otherwise makes and destroys a tf.data iterator every epoch, which stalled for up to ~9 s
    per epoch here (a shuffle buffer of decoded images torn down).
    `refit_ds` (train + selection, `refit_examples` of them): phase 2's data once refitted() says so.
    """
    keeper = KeepBestWeights(model)
    head_fit = "epochs"  # "logistic" once phase 1 was the logistic fit
    refit = False  # True once the selection split joined the training (refitted())
    rows: List[Dict[str, Any]] = []
    seconds: Dict[str, float] = {}
    epochs_done = 0
    image_steps = math.ceil(train_examples / training_cfg.batch_size) if train_examples else None
    image_train = train_ds.repeat() if image_steps else train_ds
    for phase, epochs, learning_rate in phases(model_cfg, training_cfg):
        fitted, train_data, eval_data, steps = model, image_train, eval_ds, image_steps
        with (distribution or tf.distribute.get_strategy()).scope():
            set_phase(base, phase, model_cfg)
            views = training_cfg.feature_views
            if phase == 1 and views > 0:
                start = time.monotonic()
                cached = cached_phase_one(model, train_ds, eval_ds, views, training_cfg.batch_size,
                                          training_cfg.seed, feature_budget_bytes)
                seconds["features"] = round(time.monotonic() - start, 1)
                if cached:
                    fitted, train_data, eval_data, arrays = cached
                    steps = None  # the in-memory features: Keras' own epoch of one pass
            compile_model(fitted, num_classes, learning_rate)  # recompile: trainable flags changed
        if phase == 1 and views > 0 and cached and logistic_head(training_cfg, distribution, train_examples):
            head_fit = "logistic"
            refit = refitted(training_cfg, head_fit, refit_ds)
            rows.append(_logistic_phase_one(fitted, arrays, train_data, eval_data, num_classes, training_cfg, keeper,
                                            model, views if refit else 0))
            seconds["phase_1"] = rows[-1]["epoch_seconds"]
            epochs_done = 1
            if refit:  # the selection split has chosen: it joins the training (its metrics are no longer held out)
                image_train, image_steps = refit_ds.repeat(), math.ceil(refit_examples / training_cfg.batch_size)
            continue
        keep_best = selection_of(training_cfg, head_fit) == "val_loss"
        clock = EpochClock()
        callbacks = [clock, *([keeper] if keep_best else []),
                     keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch")]
        if training_cfg.early_stopping and keep_best:
            callbacks.insert(0, keras.callbacks.EarlyStopping(monitor="val_loss",
                                                              patience=training_cfg.early_stopping_patience))
        start = time.monotonic()
        history = fitted.fit(
            train_data,
            validation_data=eval_data,
            initial_epoch=epochs_done,
            epochs=epochs_done + epochs,
            steps_per_epoch=steps,
            callbacks=callbacks,
            class_weight=class_weight,
            verbose=2,
        )
        seconds[f"phase_{phase}"] = round(time.monotonic() - start, 1)
        log.info("phase %d: fit %.1f s, of which epochs %.1f s", phase, seconds[f"phase_{phase}"], sum(clock.seconds))
        for i, epoch in enumerate(history.epoch):
            row = {"epoch": epoch + 1, "phase": phase, "trainable_params": _count(model.trainable_weights),
                   "epoch_seconds": clock.seconds[i], "steps": clock.steps[i]}
            row.update({k: float(v[i]) for k, v in history.history.items()})
            rows.append(row)
        epochs_done += len(history.epoch)
    if selection_of(training_cfg, head_fit) == "last":
        return {"epochs": rows, "best_epoch": epochs_done, "best_val_loss": rows[-1].get("val_loss"),
                "selection": "last", "head_fit": head_fit, "refit": refit, "seconds": seconds}
    keeper.restore()
    return {"epochs": rows, "best_epoch": keeper.best_epoch + 1, "best_val_loss": keeper.best,
            "selection": "val_loss", "head_fit": head_fit, "refit": refit, "seconds": seconds}


def selection_of(training_cfg: TrainingConfig, head_fit: str) -> str:
    """--selection, auto resolved: after the logistic head fit, the budget's last weights. Its penalty was chosen
    on the selection split, so that split's loss favours it over every fine-tuning epoch (measured: phase 2
    early-stopped and discarded, which cost most on data unlike ImageNet); and on the few dozen selection
    images of a small set an epoch choice is noise (benchmarks/quality.py). Otherwise the lowest val_loss."""
    if training_cfg.selection != "auto":
        return training_cfg.selection
    return "last" if head_fit == "logistic" else "val_loss"


def refitted(training_cfg: TrainingConfig, head_fit: str, refit_ds) -> bool:
    """--refit (default on): after the logistic head fit with the last weights kept, the selection split has
    chosen all it chooses (the penalty), so the head is refitted and fine-tuned on train + selection: on a
    small set a tenth more training images (benchmarks/quality.py). The Evaluator's test split stays unseen."""
    return (training_cfg.refit and refit_ds is not None and head_fit == "logistic"
            and selection_of(training_cfg, head_fit) == "last")


EPOCH_HEAD_SETTINGS = (("--head-epochs", "head_epochs"), ("--head-learning-rate", "head_learning_rate"))


def logistic_head(training_cfg: TrainingConfig, distribution, train_examples: Optional[int]) -> bool:
    """--head-fit logistic, or auto on small data (benchmarks/quality.py: it wins there) unless the head is warm
    started (the fit would not start from it); in one replica only, a fit per worker would give each worker
    other weights. Head epochs or rate set away from their defaults are not used then: a WARNING says so."""
    from tfx_image_finetune.trainer.strategy import SMALL_DATA

    wanted = training_cfg.head_fit == "logistic" or (
        training_cfg.head_fit == "auto" and not training_cfg.warm_start and train_examples is not None
        and train_examples < SMALL_DATA)
    if wanted and distribution is not None and distribution.num_replicas_in_sync > 1:
        log.warning("the logistic head fit runs in one replica only: phase 1 trains by epochs on %d replicas",
                    distribution.num_replicas_in_sync)
        return False
    unused = [f"{name} {getattr(training_cfg, name)} ({flag})" for flag, name in EPOCH_HEAD_SETTINGS
              if getattr(training_cfg, name) != getattr(TrainingConfig, name)]  # a flag, or a --param
    if wanted and unused:
        log.warning("phase 1 is the logistic head fit (%s), which does not use %s: --head-fit epochs trains the "
                    "head by epochs", "--head-fit logistic" if training_cfg.head_fit == "logistic" else
                    f"{train_examples} training images, under {SMALL_DATA}: --head-fit auto", " or ".join(unused))
    return wanted


def _logistic_phase_one(head, arrays, train_data, eval_data, num_classes, training_cfg, keeper, model,
                        refit: int) -> Dict:
    """Phase 1 by trainer/logistic_head.py: one history row, evaluated as an epoch would be; the keeper sees it.
    `refit`: refitted with the selection rows, each that many times (0: not)."""
    from tfx_image_finetune.trainer import logistic_head as logistic

    start = time.monotonic()
    fitted = logistic.fit_head(head, arrays[0], arrays[1], num_classes, training_cfg.seed, refit)
    train_loss, train_accuracy = head.evaluate(train_data, verbose=0)
    val_loss, val_accuracy = head.evaluate(eval_data, verbose=0)
    logs = {"loss": train_loss, "accuracy": train_accuracy, "val_loss": val_loss, "val_accuracy": val_accuracy}
    keeper.on_epoch_end(0, logs)
    return {"epoch": 1, "phase": 1, "trainable_params": _count(model.trainable_weights),
            "epoch_seconds": round(time.monotonic() - start, 2), "steps": 0, "head_fit": "logistic",
            "l2": fitted["l2"], "selection_loss_by_l2": fitted["selection_loss"],
            **{k: float(v) for k, v in logs.items()}}


def _count(weights) -> int:
    return int(sum(np.prod(w.shape) for w in weights))


def write_history(history: Dict[str, Any], path: str) -> None:
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(history, f, indent=2)
