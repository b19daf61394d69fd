"""The Trainer on 1 vs 2 local workers (MultiWorkerMirroredStrategy over 127.0.0.1) on the same data.

Generated two-class images through ExampleGen and Transform (as TFX hands them to the Trainer), then the
project's run_fn as one process, and as a chief and a worker (tests/multi_worker_child.py: one TF thread pool
thread each). Per run: wall time of the slowest process, epoch seconds summed from history.json (global steps
x global batch = examples), examples per second in all and per worker; then the communication overhead, the
2-worker seconds per global step over the 1-worker ones. On one machine the two workers share its cores, so
this measures the overhead of the collectives and the split input, not the speed-up a second machine gives.

    .venv/bin/python benchmarks/multi_worker.py [--images 400] [--image-size 96] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

sys.path.insert(0, common.REPO)


def _run(inputs, custom_config, out: str, tasks) -> dict:
    from tests import multi_worker_child

    shutil.rmtree(out, ignore_errors=True)
    args = {**inputs, "custom_config": custom_config, "serving_model_dir": os.path.join(out, "serving"),
            "model_run_dir": os.path.join(out, "model_run")}
    start = time.monotonic()
    procs, logs = multi_worker_child.start(args, out, tasks)
    codes = [p.wait() for p in procs]
    seconds = time.monotonic() - start
    if any(codes):
        raise SystemExit(f"a worker failed ({codes}); logs: {logs}")
    history = json.load(open(os.path.join(out, "model_run", "history.json")))
    steps = sum(row["steps"] for row in history["epochs"])
    epoch_seconds = sum(row["epoch_seconds"] for row in history["epochs"])
    return {"workers": history["workers"], "seconds": round(seconds, 1), "epoch_seconds": round(epoch_seconds, 1),
            "steps": steps, "seconds_per_step": round(epoch_seconds / steps, 3),
            "val_accuracy": history["epochs"][-1].get("val_accuracy")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=400)
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--weights", default=common.MOBILENET_WEIGHTS)
    args = common.parse_with_budget(p, argv, head_epochs=2, finetune_epochs=1)
    from tests.helpers import trainer_inputs
    from tfx_image_finetune.component_configs import TrainerConfig
    from tfx_image_finetune.config import PipelineConfig

    work = pathlib.Path(args.work) / f"multi_worker_{args.images}"
    images = common.generated_folder(str(work / "images"), 2, args.images // 2, size=args.image_size)
    if not (work / "transform_fn").exists():
        trainer_inputs(images, work, args.image_size)
    inputs = {"train_files": [str(work / "gen/examples/Split-train/*")],
              "eval_files": [str(work / "gen/examples/Split-selection/*")],
              "transform_output": str(work / "transform_fn")}
    cfg = PipelineConfig()
    cfg.model.backbone, cfg.model.alpha, cfg.model.image_size, cfg.model.weights = (
        "mobilenet_v2", 0.35, args.image_size, args.weights)
    t = cfg.training
    t.head_epochs, t.finetune_epochs, t.batch_size = args.head_epochs, args.finetune_epochs, args.batch_size
    t.feature_views, t.early_stopping = 0, False  # every epoch on images: the distributed input and gradients
    custom_config = TrainerConfig.of(cfg, 2).to_custom_config()
    one = _run(inputs, custom_config, str(work / "one"), [])
    two = _run(inputs, custom_config, str(work / "two"), [("chief", 0), ("worker", 0)])
    for row in (one, two):
        examples = row["steps"] * args.batch_size
        row["examples_per_second"] = round(examples / row["epoch_seconds"], 1)
        row["examples_per_second_per_worker"] = round(row["examples_per_second"] / row["workers"], 1)
        print(f"{row['workers']} worker(s): {row['seconds']:.0f} s wall, epochs {row['epoch_seconds']:.0f} s for "
              f"{row['steps']} global steps ({row['seconds_per_step']:.2f} s/step), {row['examples_per_second']} "
              f"examples/s ({row['examples_per_second_per_worker']} per worker), last val_accuracy "
              f"{row['val_accuracy']:.3f}")
    overhead = two["seconds_per_step"] / one["seconds_per_step"]
    print(f"2 workers / 1 worker seconds per global step: {overhead:.2f}x (both share this machine's "
          f"{os.cpu_count()} cores: the collectives' and the split input's cost, not a second machine's speed-up)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"one": one, "two": two, "step_time_ratio": overhead}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
