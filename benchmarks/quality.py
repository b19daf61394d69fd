"""Held-out accuracy of the pipeline's defaults against the recipe as a plain script, over several data sets and
seeds (issue: better than the recipe on every kind of data set).

Each data set is a pool of labelled photos that both sides train on, and held-out photos the benchmark keeps
apart: neither side selects or tests on them. The pipeline gets the pool as its --data folder (it splits off
its own selection and test photos); the recipe (recipe.py) trains on the whole pool for 20 + 10 epochs and keeps
its last weights. Both are scored on the held-out photos with the top class; the pipeline's model is the
Trainer's SavedModel, asked through its serving signature.

Data sets (photos from ../shared, plus one unlike ImageNet):
  cats_dogs      2,000 photos in 2 classes (train/); held out: validation/ (1,000)
  cats_dogs_100  100 per class of the same pool; held out: the same 1,000
  flowers5       75% of 1,493 photos in 5 classes; held out: the other 25%
  flowers5_60    60 per class of that pool; held out: the same 25%
  digits         scikit-learn's 1,797 handwritten 8x8 digits (10 classes) drawn at 64 px; 25% held out
  digits_30      30 per class of the digits pool; held out: the same 25%

    .venv/bin/python benchmarks/quality.py --datasets cats_dogs_100 flowers5_60 digits_30 --seeds 0 1 2
    .venv/bin/python benchmarks/quality.py --variant "last=--selection last" --json quality.json

Prints per data set the mean, spread and range over seeds, the pipeline's lead over the recipe in points, and
its wall time as a ratio of the recipe's (targets: lead >= 0, >= +1 point on the small sets, ratio <= 0.8).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import shutil
import sys
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import recipe  # noqa: E402

FLOWERS = os.path.join(common.SHARED, "data", "flowers5")
HELD_OUT_FRACTION = 0.25
SMALL = {"cats_dogs_100": ("cats_dogs", 100), "flowers5_60": ("flowers5", 60), "digits_30": ("digits", 30)}
DATASETS = ["cats_dogs", "cats_dogs_100", "flowers5", "flowers5_60", "digits", "digits_30"]
Rows = List[Tuple[str, str]]


def _listing(folder: str) -> Rows:
    return [(path, os.path.basename(os.path.dirname(path)))
            for path in sorted(glob.glob(os.path.join(folder, "*", "*"))) if os.path.isfile(path)]


def _split_per_class(rows: Rows, fraction: float) -> Tuple[Rows, Rows]:
    """(pool, held out): `fraction` of each class held out, drawn with a fixed seed."""
    pool, held = [], []
    for label in sorted({label for _, label in rows}):
        mine = [r for r in rows if r[1] == label]
        random.Random(0).shuffle(mine)
        cut = round(len(mine) * fraction)
        held += mine[:cut]
        pool += mine[cut:]
    return sorted(pool), sorted(held)


def _digits(folder: str) -> Rows:
    """scikit-learn's 8x8 digits (bundled, no download) as 64 px PNGs: dark strokes on a light page."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    done = os.path.join(folder, ".complete")
    if not os.path.exists(done):
        digits = load_digits()
        for i, (pixels, target) in enumerate(zip(digits.images, digits.target)):
            os.makedirs(os.path.join(folder, f"digit_{target}"), exist_ok=True)
            page = (255 - pixels * (255 / 16)).astype(np.uint8)
            Image.fromarray(page).convert("RGB").resize((64, 64), Image.BILINEAR).save(
                os.path.join(folder, f"digit_{target}", f"{i:04d}.png"))
        open(done, "w").close()
    return _listing(folder)


def data_set(name: str, work: str) -> Tuple[Rows, Rows]:
    """(pool, held out) rows [(path, class)] of a data set."""
    if name in SMALL:
        parent, per_class = SMALL[name]
        pool, held = data_set(parent, work)
        small = []
        for label in sorted({label for _, label in pool}):
            mine = [r for r in pool if r[1] == label]
            small += random.Random(0).sample(mine, per_class)
        return sorted(small), held
    if name == "cats_dogs":
        return _listing(os.path.join(common.CATS_DOGS, "train")), _listing(os.path.join(common.CATS_DOGS, "validation"))
    if name == "flowers5":
        return _split_per_class(_listing(FLOWERS), HELD_OUT_FRACTION)
    if name == "digits":
        return _split_per_class(_digits(os.path.join(work, "digits_source")), HELD_OUT_FRACTION)
    raise ValueError(name)


def pool_folder(rows: Rows, folder: str) -> str:
    """<folder>/<class>/<file>: the pool as the pipeline's --data (copied once)."""
    done = os.path.join(folder, ".complete")
    if not os.path.exists(done):
        shutil.rmtree(folder, ignore_errors=True)
        for path, label in rows:
            os.makedirs(os.path.join(folder, label), exist_ok=True)
            shutil.copy(path, os.path.join(folder, label, os.path.basename(path)))
        open(done, "w").close()
    return folder


def pipeline_accuracy(output: str, held: Rows) -> float:
    """The latest Trainer model's top-class accuracy on the held-out photos, through its serving signature."""
    from tfx_image_finetune.serving.predict import SavedModelClient, classify_files

    models = glob.glob(os.path.join(output, "pipeline_root", "Trainer", "model", "*", "Format-Serving"))
    model = max(models, key=lambda p: int(p.split(os.sep)[-2]))
    truth = dict(held)
    answers = list(classify_files(SavedModelClient(model), [p for p, _ in held]))
    return sum(getattr(a, "label", None) == truth[a.path] for a in answers) / len(held)


def run_pipeline(args, data: str, held: Rows, output: str, seed: int, flags: List[str]) -> Dict:
    shutil.rmtree(output, ignore_errors=True)
    run = common.run_cli(["run", "--data", data, "--output", output, "--backbone", "mobilenet_v2",
                          "--alpha", str(args.alpha), "--image-size", str(args.image_size), "--weights", args.weights,
                          "--accuracy-threshold", "0", "--seed", str(seed), *flags], output + ".log")
    if run["exit_code"] != 0:
        raise SystemExit(f"quality: the pipeline failed (exit {run['exit_code']}), see {output}.log")
    history = common.trainer_history(output)
    return {"accuracy": round(pipeline_accuracy(output, held), 4), "seconds": run["seconds"],
            "epochs": len(history.get("epochs", [])), "best_epoch": history.get("best_epoch"),
            "strategy": (history.get("strategy") or {}).get("used")}


def run_recipe(args, pool: Rows, held: Rows, seed: int) -> Dict:
    classes = sorted({label for _, label in pool})
    model, seconds = recipe.train(pool, classes, args.image_size, args.weights, args.alpha, 20, 10, seed=seed)
    return {"accuracy": round(recipe.accuracy(model, held, classes, args.image_size), 4), "seconds": round(seconds, 1)}


def summary(runs: Dict[str, List[Dict]], small: bool) -> Dict:
    out = {side: {"accuracy": recipe.scores([r["accuracy"] for r in rows]),
                  "seconds": recipe.scores([r["seconds"] for r in rows])} for side, rows in runs.items() if rows}
    base = out.get("recipe")
    for side, s in out.items():
        if base and side != "recipe":
            s["lead_points"] = round((s["accuracy"]["mean"] - base["accuracy"]["mean"]) * 100, 1)
            s["time_ratio"] = round(s["seconds"]["mean"] / base["seconds"]["mean"], 2)
            s["meets_target"] = s["lead_points"] >= (1.0 if small else 0.0) and s["time_ratio"] <= 0.8
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", choices=DATASETS, default=DATASETS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--variant", action="append", default=[],
                   help="NAME=FLAGS: a pipeline run with these extra flags (repeatable; default: defaults=)")
    p.add_argument("--skip-recipe", action="store_true")
    p.add_argument("--image-size", type=int, default=160)
    p.add_argument("--alpha", type=float, default=0.35)
    p.add_argument("--weights", default=common.MOBILENET_WEIGHTS)
    p.add_argument("--work", default=os.path.join("/tmp", "tfx_image_finetune_quality"))
    p.add_argument("--json", help="write the runs and the summary here (rewritten after every run)")
    p.add_argument("--resume", action="store_true", help="keep the runs already in --json, run only the others")
    args = p.parse_args(argv)
    variants = dict(v.split("=", 1) for v in args.variant) or {"defaults": ""}
    print(common.machine_line())
    print(common.settings_line(args))
    result: Dict = {"settings": {k: v for k, v in vars(args).items()}, "data_sets": {}}
    done: Dict = {}
    if args.resume and args.json and os.path.exists(args.json):
        with open(args.json) as f:
            result["data_sets"] = done = json.load(f)["data_sets"]
    for name in args.datasets:
        pool, held = data_set(name, args.work)
        data = pool_folder(pool, os.path.join(args.work, name, "pool"))
        runs: Dict[str, List[Dict]] = {**({} if args.skip_recipe else {"recipe": []}), **{v: [] for v in variants}}
        for side, rows in done.get(name, {}).get("runs", {}).items():
            runs[side] = rows
        entry = result["data_sets"][name] = {"pool": len(pool), "held_out": len(held),
                                             "classes": len({c for _, c in pool}), "runs": runs}
        for seed in args.seeds:
            for side in [*({} if args.skip_recipe else {"recipe": []}), *variants]:
                if any(row["seed"] == seed for row in runs[side]):
                    continue
                if side == "recipe":
                    row = run_recipe(args, pool, held, seed)
                else:
                    row = run_pipeline(args, data, held, os.path.join(args.work, name, f"{side}-{seed}"), seed,
                                       variants[side].split())
                runs[side].append({"seed": seed, **row})
                print(f"{name} seed {seed} {side}: {json.dumps(row)}", flush=True)
                entry["summary"] = summary(runs, name in SMALL)
                if args.json:
                    with open(args.json, "w") as f:
                        json.dump(result, f, indent=2)
        entry["summary"] = summary(runs, name in SMALL)
        for side, s in entry["summary"].items():
            a = s["accuracy"]
            extra = (f"; {s['lead_points']:+.1f} points, time x{s['time_ratio']:.2f}, "
                     f"target {'met' if s['meets_target'] else 'not met'}") if "lead_points" in s else ""
            print(f"{name} ({len(pool)} pool, {len(held)} held out) {side}: {a['mean']:.3f} +- {a['std']:.3f} "
                  f"({a['min']:.3f}-{a['max']:.3f}, {a['n']} seeds), {s['seconds']['mean']:.0f} s{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
