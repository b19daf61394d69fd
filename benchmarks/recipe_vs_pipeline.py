"""The pipeline against the recipe as a plain Keras script: same photos, same weights, same epoch budget.

Fair by construction:
- the pipeline runs first (its CLI, imports included); it hash-splits train/ into train + selection and
  blesses on validation/ (its test split). The recipe then trains on exactly the pipeline's train-split
  photos (read back from ExampleGen's output) and is scored on validation/, which neither side used for early
  stopping or weight selection;
- one decision rule, p >= 0.5: the recipe's BinaryAccuracy thresholds its logits at 0 (the default 0.5 on
  logits would mean p > 0.62), as the pipeline's training metric and TFMA's BinaryAccuracy on probabilities do;
- the same budget, 20 + 10 epochs, with the pipeline's early stopping off (--no-early-stopping); a second line
  runs the pipeline with its defaults (early stopping on) unless --skip-defaults.
Prints both accuracies, both wall times, their ratios, the pipeline's seconds per component (MLMD) and fit
seconds (history.json), and writes it all as JSON (--json) for benchmarks/README.md's table.

    .venv/bin/python benchmarks/recipe_vs_pipeline.py --json rvp.json          # full cats/dogs, 20 + 10
    .venv/bin/python benchmarks/recipe_vs_pipeline.py --per-class 100 --head-epochs 3 --finetune-epochs 1
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

SHARED = common.SHARED


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
    p.add_argument("--feature-views", type=int, default=3, help="the pipeline's --feature-views (0: phase 1 on images)")
    p.add_argument("--skip-defaults", action="store_true", help="only the equal-budget pipeline run")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--output", help="working folder (default: a temporary one, removed afterwards)")
    return p.parse_args(argv)


def subset(src: str, dst: str, per_class: int) -> str:
    for split in ("train", "validation"):
        for cls in sorted(os.listdir(os.path.join(src, split))):
            os.makedirs(os.path.join(dst, split, cls))
            for name in sorted(os.listdir(os.path.join(src, split, cls)))[:per_class]:
                shutil.copy(os.path.join(src, split, cls, name), os.path.join(dst, split, cls, name))
    return dst




def train_split_files(output: str, data: str):
    """The photos the pipeline trained on: (path, label) from the `filename` feature of its train split."""
    import tensorflow as tf

    from tfx_image_finetune.data_contract import EXAMPLES_COMPRESSION, FILENAME_FEATURE

    files = glob.glob(os.path.join(output, "pipeline_root", "ImageFolderExampleGen", "examples", "*",
                                   "Split-train", "*.gz"))
    spec = {FILENAME_FEATURE: tf.io.FixedLenFeature([1], tf.string), "label": tf.io.FixedLenFeature([1], tf.string)}
    rows = []
    for batch in tf.data.TFRecordDataset(files, compression_type=EXAMPLES_COMPRESSION).batch(512):
        parsed = tf.io.parse_example(batch, spec)
        for name, label in zip(parsed[FILENAME_FEATURE].numpy()[:, 0], parsed["label"].numpy()[:, 0]):
            rows.append((os.path.join(data, name.decode()), label.decode()))
    return sorted(rows)


def run_recipe(args: argparse.Namespace, train_rows, data: str) -> dict:
    """The guide's script: augmentation -> Rescaling -> base(training=False) -> GAP -> Dropout -> Dense(1)."""
    from tfx_image_finetune.trainer.keras2 import keras, tf  # tf_keras, with the autograph rule that keeps fit() fast

    start = time.monotonic()
    size = (args.image_size, args.image_size)
    classes = sorted({label for _, label in train_rows})

    def decode(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return tf.image.resize(image, size), label  # bilinear, as image_dataset_from_directory

    paths = [p for p, _ in train_rows]
    labels = [float(classes.index(label)) for _, label in train_rows]
    train = (tf.data.Dataset.from_tensor_slices((paths, labels)).map(decode, num_parallel_calls=tf.data.AUTOTUNE)
             .cache().shuffle(len(paths), seed=1).batch(args.batch_size).prefetch(tf.data.AUTOTUNE))
    validation = keras.utils.image_dataset_from_directory(
        os.path.join(data, "validation"), image_size=size, batch_size=args.batch_size, label_mode="binary",
        class_names=classes, shuffle=False).cache().prefetch(tf.data.AUTOTUNE)
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
    for trainable, lr, epochs in ((False, 1e-3, args.head_epochs), (True, 1e-5, args.finetune_epochs)):
        if epochs <= 0:
            continue
        base.trainable = trainable
        model.compile(keras.optimizers.Adam(lr), keras.losses.BinaryCrossentropy(from_logits=True),
                      [keras.metrics.BinaryAccuracy(threshold=0.0)])  # logits: 0 is p = 0.5
        model.fit(train, epochs=epochs, verbose=2)
    seconds = time.monotonic() - start
    _, accuracy = model.evaluate(validation, verbose=0)
    return {"seconds": round(seconds, 1), "accuracy": round(float(accuracy), 4), "train_images": len(paths)}


def run_pipeline(args: argparse.Namespace, data: str, output: str, equal_budget: bool) -> dict:
    flags = ["run", "--data", data, "--output", output, "--backbone", "mobilenet_v2", "--alpha", str(args.alpha),
             "--image-size", str(args.image_size), "--weights", args.weights, "--head-epochs", str(args.head_epochs),
             "--finetune-epochs", str(args.finetune_epochs), "--batch-size", str(args.batch_size),
             "--feature-views", str(args.feature_views), "--accuracy-threshold", "0"]
    run = common.run_cli(flags + (["--no-early-stopping"] if equal_budget else []), output + ".log")
    accuracy, examples = common.accuracy(output)
    history = common.trainer_history(output)
    return {**run, "accuracy": round(accuracy, 4), "examples": examples, "fit_seconds": common.fit_seconds(history),
            "fit": history.get("seconds"), "epochs": len(history.get("epochs", [])),
            "components": common.component_seconds(output)}


def main(argv=None) -> int:
    args = parse_args(argv)
    for path in (args.data, args.weights):
        if not os.path.exists(path):
            sys.exit(f"recipe_vs_pipeline: {path} not found (set TFX_IMAGE_FINETUNE_SHARED or pass --data/--weights)")
    print(common.machine_line())
    print(common.settings_line(args))
    work = args.output or tempfile.mkdtemp(prefix="recipe_vs_pipeline-")
    os.makedirs(work, exist_ok=True)
    try:
        data = subset(args.data, os.path.join(work, "data"), args.per_class) if args.per_class else args.data
        pipeline = run_pipeline(args, data, os.path.join(work, "pipeline"), equal_budget=True)
        recipe = run_recipe(args, train_split_files(os.path.join(work, "pipeline"), data), data)
        defaults = None if args.skip_defaults else run_pipeline(args, data, os.path.join(work, "defaults"), False)
    finally:
        if not args.output:
            shutil.rmtree(work, ignore_errors=True)
    result = {"recipe": recipe, "pipeline_equal_budget": pipeline, "pipeline_defaults": defaults}
    print(f"recipe (plain Keras), {recipe['train_images']} training photos: accuracy {recipe['accuracy']:.4f} on "
          f"validation/; {recipe['seconds']:.0f} s")
    for name, run in (("equal budget", pipeline), ("defaults (early stopping)", defaults)):
        if run is None:
            continue
        print(f"pipeline, {name}: accuracy {run['accuracy']:.4f} on {run['examples']} photos, {run['epochs']} epochs; "
              f"{run['seconds']:.0f} s ({run['fit_seconds']:.0f} s fit); ratio to the recipe: wall time "
              f"{run['seconds'] / recipe['seconds']:.2f} (target <= 0.8), accuracy "
              f"{(run['accuracy'] - recipe['accuracy']) * 100:+.1f} points (target within 1)")
        print("  per component: " + ", ".join(f"{k} {v:.0f} s" for k, v in run["components"].items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
