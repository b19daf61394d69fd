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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import recipe  # noqa: E402

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
    """The guide's script (recipe.py) on the pipeline's train-split photos, scored on validation/."""
    classes = sorted({label for _, label in train_rows})
    model, seconds = recipe.train(train_rows, classes, args.image_size, args.weights, args.alpha, args.head_epochs,
                                  args.finetune_epochs, args.batch_size, seed=1)
    validation = [(p, label) for label in classes
                  for p in sorted(glob.glob(os.path.join(data, "validation", label, "*")))]
    return {"seconds": round(seconds, 1), "accuracy": round(recipe.accuracy(model, validation, classes, args.image_size), 4),
            "train_images": len(train_rows)}


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
