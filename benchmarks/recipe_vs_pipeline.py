"""The pipeline against the recipe as a plain Keras script, on the same photos, weights and epochs.

Baseline (measured in this run): the Keras transfer-learning guide's two phases written directly with tf_keras
(image_dataset_from_directory, MobileNetV2 at 160 px by default), its validation accuracy and wall time.
Candidate: the whole TFX pipeline (LocalDagRunner, Beam DirectRunner) on the same folder, the Evaluator's
accuracy on the same validation photos and the pipeline's wall time. Prints both and their ratios.

    .venv/bin/python benchmarks/recipe_vs_pipeline.py                      # full cats/dogs, 20 + 10 epochs
    .venv/bin/python benchmarks/recipe_vs_pipeline.py --per-class 100 --head-epochs 3 --finetune-epochs 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
SHARED = os.environ.get("TFX_IMAGE_FINETUNE_SHARED", os.path.join(os.path.dirname(REPO), "shared"))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.path.join(SHARED, "data", "cats_and_dogs_filtered"),
                   help="image folder split into train/ and validation/ (default: ../shared cats and dogs)")
    p.add_argument("--weights", default=os.path.join(
        SHARED, "weights", "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"))
    p.add_argument("--alpha", type=float, default=0.35)
    p.add_argument("--image-size", type=int, default=160)
    p.add_argument("--head-epochs", type=int, default=20)
    p.add_argument("--finetune-epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--per-class", type=int, help="use only the first N photos per class and split")
    p.add_argument("--output", help="working folder (default: a temporary one, removed afterwards)")
    return p.parse_args(argv)


def subset(src: str, dst: str, per_class: int) -> str:
    for split in ("train", "validation"):
        for cls in sorted(os.listdir(os.path.join(src, split))):
            os.makedirs(os.path.join(dst, split, cls))
            for name in sorted(os.listdir(os.path.join(src, split, cls)))[:per_class]:
                shutil.copy(os.path.join(src, split, cls, name), os.path.join(dst, split, cls, name))
    return dst


def run_recipe(args: argparse.Namespace, data: str) -> dict:
    """The guide's script: augmentation -> Rescaling -> base(training=False) -> GAP -> Dropout -> Dense(1)."""
    from tfx_image_finetune.trainer.keras2 import keras, tf  # tf_keras, with the autograph rule that keeps fit() fast

    start = time.monotonic()
    size = (args.image_size, args.image_size)
    load = lambda split, shuffle: keras.utils.image_dataset_from_directory(  # noqa: E731
        os.path.join(data, split), image_size=size, batch_size=args.batch_size, label_mode="binary",
        shuffle=shuffle, seed=1).cache().prefetch(tf.data.AUTOTUNE)
    train, validation = load("train", True), load("validation", False)
    base = keras.applications.MobileNetV2(input_shape=size + (3,), alpha=args.alpha, include_top=False,
                                          weights=args.weights)
    inputs = keras.Input(size + (3,))
    x = keras.layers.RandomFlip("horizontal")(inputs)
    x = keras.layers.RandomRotation(0.1)(x)
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(x)
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    model = keras.Model(inputs, keras.layers.Dense(1)(x))
    accuracies = []
    for trainable, lr, epochs in ((False, 1e-3, args.head_epochs), (True, 1e-5, args.finetune_epochs)):
        if epochs <= 0:
            continue
        base.trainable = trainable
        model.compile(keras.optimizers.Adam(lr), keras.losses.BinaryCrossentropy(from_logits=True),
                      [keras.metrics.BinaryAccuracy()])
        history = model.fit(train, validation_data=validation, epochs=epochs, verbose=2)
        accuracies += history.history["val_binary_accuracy"]
    return {"seconds": time.monotonic() - start, "final_accuracy": accuracies[-1], "best_accuracy": max(accuracies)}


def run_pipeline(args: argparse.Namespace, data: str, output: str) -> dict:
    from tfx_image_finetune.pipeline import local_runner, run_summary
    from tfx_image_finetune.config import PipelineConfig

    cfg = PipelineConfig()
    cfg.data.path = data
    cfg.model.backbone, cfg.model.alpha, cfg.model.image_size = "mobilenet_v2", args.alpha, args.image_size
    cfg.model.weights = args.weights
    cfg.training.head_epochs, cfg.training.finetune_epochs = args.head_epochs, args.finetune_epochs
    cfg.training.batch_size = args.batch_size
    cfg.runtime.output_dir = output
    start = time.monotonic()
    local_runner.run(cfg)
    seconds = time.monotonic() - start
    metrics = run_summary.eval_metrics(cfg.metadata_path)
    return {"seconds": seconds, "accuracy": metrics["binary_accuracy"], "examples": metrics["example_count"],
            "blessed": run_summary.blessed(cfg.metadata_path),
            "trainer_seconds": run_summary.execution_seconds(cfg.metadata_path).get("Trainer")}


def main(argv=None) -> int:
    args = parse_args(argv)
    for path in (args.data, args.weights):
        if not os.path.exists(path):
            sys.exit(f"recipe_vs_pipeline: {path} not found (set TFX_IMAGE_FINETUNE_SHARED or pass --data/--weights)")
    work = args.output or tempfile.mkdtemp(prefix="recipe_vs_pipeline-")
    try:
        data = subset(args.data, os.path.join(work, "data"), args.per_class) if args.per_class else args.data
        recipe = run_recipe(args, data)
        pipeline = run_pipeline(args, data, os.path.join(work, "pipeline"))
    finally:
        if not args.output:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"recipe": recipe, "pipeline": pipeline}, indent=2))
    print(f"recipe (plain Keras): val accuracy {recipe['final_accuracy']:.4f} at the end, "
          f"{recipe['best_accuracy']:.4f} best epoch; {recipe['seconds']:.0f} s")
    print(f"pipeline (TFX)     : Evaluator accuracy {pipeline['accuracy']:.4f} on {pipeline['examples']:.0f} photos; "
          f"{pipeline['seconds']:.0f} s ({pipeline['trainer_seconds'] or 0:.0f} s in the Trainer)")
    print(f"ratio pipeline/recipe: accuracy {pipeline['accuracy'] / recipe['final_accuracy']:.3f}, "
          f"wall time {pipeline['seconds'] / recipe['seconds']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
