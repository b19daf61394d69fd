"""The Trainer's entry point (`run_fn`): build, train in two phases, export."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os

from tfx_image_finetune.trainer.keras2 import keras, tf
import tensorflow_transform as tft

from tfx_image_finetune.component_configs import EXAMPLES_PER_CLASS_KEY, TrainerConfig
from tfx_image_finetune.config import ModelConfig
from tfx_image_finetune.trainer.distribute import (PEER_FAILURES, Cluster, check_agreed, device_distribution,
                                                  lost_worker, mixed_precision, output_dir, wait_for_chief_export)
from tfx_image_finetune.trainer.data import (MIB, choose_input, decoded_bytes, label_counts, make_dataset,
                                            raw_images)
from tfx_image_finetune.trainer.export import ServingModule, export_saved_model
from tfx_image_finetune.trainer.model import build_model, calibrate_batchnorm, keras_weights
from tfx_image_finetune.trainer.strategy import decide
from tfx_image_finetune.trainer.train import train_two_phases, write_history
from tfx_image_finetune.trainer.transform import LABEL_VOCAB

log = logging.getLogger(__name__)
WARMUP_REQUESTS = 5


class ClassListError(ValueError):
    """The label vocabulary does not make the classification task the pipeline was built for."""


def class_names(tft_output: tft.TFTransformOutput, expected_count: int):
    """The classes in id order (Transform's sorted vocabulary), checked before any training.

    The Evaluator's metrics (binary or multi-class) were chosen from `expected_count` when the pipeline was
    built (class folders or --num-classes): a different vocabulary size fails here, naming both counts.
    """
    names = [n.decode() if isinstance(n, bytes) else n for n in tft_output.vocabulary_by_name(LABEL_VOCAB)]
    if len(names) < 2:
        raise ClassListError(f"the label vocabulary has {len(names)} class(es) {names}; at least two are needed")
    if len(names) != expected_count:
        raise ClassListError(
            f"the label vocabulary has {len(names)} classes {names}, but the pipeline was built for "
            f"{expected_count} (class folders or --num-classes), which chose the Evaluator's metrics")
    return names


def split_counts(fn_args, tft_output, label_key: str):
    """({class: examples} of the training split, the same of the evaluation split): as the ExampleGen counted them
    (components/trainer puts them in custom_config), else counted here with a pass over the label feature (run_fn
    under TFX's own Trainer, or an ExampleGen without an ingest report)."""
    counted = (fn_args.custom_config or {}).get(EXAMPLES_PER_CLASS_KEY)
    if counted:
        return counted["train"], counted["eval"]
    log.info("no ingest report counts: counting the labels of the training and evaluation files")
    return (label_counts(fn_args.train_files, tft_output, label_key),
            label_counts(fn_args.eval_files, tft_output, label_key))


def check_training_examples(names, train_counts) -> None:
    """Every class needs training examples: a label seen only in selection/test data is named here."""
    missing = [name for name in names if not train_counts.get(name)]
    if missing:
        raise ClassListError(f"class(es) {missing} have no training examples (they occur only outside the train "
                             f"split); training examples per class: {train_counts}")


def class_weights(names, train_counts):
    """--class-weight balanced: {class: total / (classes * count)}, so every class weighs the same in the loss."""
    total = sum(train_counts[n] for n in names)
    return {n: total / (len(names) * train_counts[n]) for n in names}


def choose_strategy(model, model_cfg: ModelConfig, train_files, tft_output, label_key, names, train_counts):
    """The chart's inputs, measured (training images; linear probe on the frozen base), and its decision."""
    from tfx_image_finetune.trainer import probe

    accuracy = probe.measure(model, train_files, tft_output, label_key, len(names))
    decision = decide(sum(train_counts.values()), accuracy, len(names), model_cfg.strategy,
                      None if model_cfg.unfreeze_from_layer else model_cfg.unfreeze_fraction)
    if model_cfg.weights == "none":
        decision["reason"] += " Random-init weights: the probe measured random features, not ImageNet's."
    log.info("strategy %s (%s): %s", decision["used"], decision["chosen_by"], decision["reason"])
    return decision


def warm_start(model, base_model, names, model_cfg: ModelConfig, features, eval_ds):
    """--warm-start: the latest blessed model's weights if it fits (trainer/warm_start.py), and where the
    selection metrics start from before any training."""
    from tfx_image_finetune.trainer import warm_start as warm
    from tfx_image_finetune.trainer.model import compile_model

    outcome = warm.apply(model, base_model, names, model_cfg, features)
    log.info("start: %s", outcome["note"])
    compile_model(model, len(names), 1e-3)
    start = model.evaluate(eval_ds, return_dict=True, verbose=0)
    outcome.update({"initial_val_loss": float(start["loss"]), "initial_val_accuracy": float(start["accuracy"])})
    return outcome


def run_fn(fn_args) -> None:
    """Train and export; on several workers (TF_CONFIG) all train, the chief alone exports (distribute.py)."""
    cluster = Cluster.from_env()
    distribution = device_distribution(cluster)  # first: a multi-worker strategy needs a TF that ran no op yet
    cfg = TrainerConfig.from_custom_config(fn_args.custom_config).with_hyperparameters(fn_args.hyperparameters)
    try:
        with mixed_precision(cfg.training.mixed_precision):
            _train_and_export(fn_args, cfg, cluster, distribution)
    except PEER_FAILURES as err:
        if cluster.workers == 1:
            raise
        raise lost_worker(err, cluster) from err
    wait_for_chief_export(fn_args.serving_model_dir, cluster)


def _train_and_export(fn_args, cfg: TrainerConfig, cluster: Cluster, distribution) -> None:
    transform_cfg, model_cfg, training_cfg = cfg.transform, cfg.model, cfg.training
    keras.utils.set_random_seed(training_cfg.seed)
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    names = class_names(tft_output, cfg.num_classes)
    train_counts, eval_counts = split_counts(fn_args, tft_output, transform_cfg.label_key)
    check_training_examples(names, train_counts)
    log.info("classes (id order): %s; training examples per class: %s", names, train_counts)
    eval_count = sum(eval_counts.values())
    data_input = choose_input(sum(train_counts.values()), eval_count, cfg.image_size, training_cfg.cache_budget_mb)
    log.info("training input: %s", "decoded images cached in memory" if data_input["in_memory"] else
             f"streamed (decoded images {data_input['decoded_mib']} MiB > cache budget {training_cfg.cache_budget_mb} MiB)")

    def dataset(files, training, examples, in_memory=data_input["in_memory"]):
        return make_dataset(files, tft_output, transform_cfg.label_key, training_cfg.batch_size, training,
                            in_memory, training_cfg.shuffle_buffer, training_cfg.seed, cluster.workers, examples)

    weights = keras_weights(model_cfg)
    with distribution.scope():
        model, base = build_model(model_cfg, len(names), weights, training_cfg.seed)
    train_ds = dataset(fn_args.train_files, True, sum(train_counts.values()))
    if weights is None:
        calibrate_batchnorm(model, base, tf.concat([x for x, _ in train_ds.take(4)], axis=0))
    decision = choose_strategy(model, model_cfg, fn_args.train_files, tft_output, transform_cfg.label_key, names,
                               train_counts)
    check_agreed(distribution, int(decision["used"]) + (decision["unfreeze_fraction"] or 0), "the fine-tuning strategy")
    model_cfg = dataclasses.replace(model_cfg, strategy=decision["used"],
                                    unfreeze_fraction=decision["unfreeze_fraction"] or model_cfg.unfreeze_fraction)
    keras.utils.set_random_seed(training_cfg.seed)  # training draws the same randomness, probe or not
    class_weight = class_weights(names, train_counts) if training_cfg.class_weight == "balanced" else None
    eval_ds = dataset(fn_args.eval_files, False, eval_count)
    feature_keys = (transform_cfg.image_key, transform_cfg.label_key)
    warm = warm_start(model, fn_args.base_model, names, model_cfg, feature_keys, eval_ds) if training_cfg.warm_start else None
    both = sum(train_counts.values()) + eval_count  # train + selection, should the selection split join
    with output_dir(fn_args.model_run_dir, cluster) as run_dir:  # another worker's logs: scratch, removed
        history = train_two_phases(
            model, base, train_ds, eval_ds,
            len(names), model_cfg, training_cfg, run_dir, distribution,
            class_weight={names.index(n): w for n, w in class_weight.items()} if class_weight else None,
            feature_budget_bytes=data_input["feature_budget_bytes"], train_examples=sum(train_counts.values()),
            refit_ds=dataset(list(fn_args.train_files) + list(fn_args.eval_files), True, both,  # read if refitted
                             in_memory=data_input["in_memory"] and 2 * decoded_bytes(both, cfg.image_size)
                             <= training_cfg.cache_budget_mb * MIB),  # a second cache beside the first
            refit_examples=both,
        )
        history.update({"classes": names, "train_examples_per_class": train_counts,
                        "weights": model_cfg.weights if weights else "none (random init)",
                        "strategy": decision, "class_weight": class_weight, "warm_start": warm,
                        "input": data_input, "workers": cluster.workers,
                        "replicas": distribution.num_replicas_in_sync})
        write_history(history, os.path.join(run_dir, "history.json"))
    log.info("%s: %d training steps, weights digest %s", cluster.name,
             sum(row["steps"] for row in history["epochs"]), weights_digest(model))
    if distribution.num_replicas_in_sync > 1:  # a SavedModel signature cannot capture distributed variables
        trained = model
        model, _ = build_model(model_cfg, len(names), None, training_cfg.seed)
        model.set_weights(trained.get_weights())
    module = ServingModule(model, tft_output, names, transform_cfg.image_key, transform_cfg.label_key)
    summary = {"config": cfg.to_custom_config(), "history": history}
    warmup = raw_images(fn_args.eval_files, transform_cfg.image_key, WARMUP_REQUESTS)
    with output_dir(fn_args.serving_model_dir, cluster) as export_dir:  # every worker saves (MWMS), one keeps it
        export_saved_model(module, export_dir, names, summary, warmup)
    if model_cfg.tflite != "none" and cluster.is_chief:  # no collectives in a conversion: the chief alone
        export_tflite(model, names, cfg.image_size, model_cfg.tflite, fn_args.serving_model_dir,
                      lambda: make_dataset(fn_args.train_files, tft_output, transform_cfg.label_key,
                                           training_cfg.batch_size, False, in_memory=False))  # read, not cached


def export_tflite(model, names, image_size: int, mode: str, serving_model_dir: str, images) -> None:
    """--tflite: <model artifact>/tflite/ beside Format-Serving/; int8 calibrated on training images (`images`:
    a dataset of (Transform output, label) batches)."""
    from tfx_image_finetune.trainer import tflite

    representative = tflite.representative_pixels(x.numpy() for x, _ in images()) if mode == "int8" else None
    tflite.export(model, names, image_size, mode, os.path.dirname(serving_model_dir.rstrip("/")), representative)


def weights_digest(model) -> str:
    """sha256 of the model's weights: equal on every worker of a synchronous multi-worker training."""
    digest = hashlib.sha256()
    for weights in model.get_weights():
        digest.update(weights.tobytes())
    return digest.hexdigest()[:16]
