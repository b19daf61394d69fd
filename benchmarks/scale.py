"""Memory flat in data size, time linear: the pipeline at 1x, 4x and 16x a base number of images.

Generated two-class folders (160 px JPEGs, written once under --work), MobileNetV2-0.35 with the shared
weights (or --weights none), a small fixed budget (1 + 1 epochs, early stopping off), default settings
otherwise (--beam-mode auto, --cache-budget-mb 2048: the 16x run is streamed). Per size: wall time, seconds
per component (MLMD), seconds per image, the marginal seconds per image between sizes, the peak resident
memory of the CLI's whole process tree; then the ratios. Targets: peak at 16x <= 1.1 x peak at 1x, and the
marginal time per image flat (the fixed start-up and component overhead makes the plain per-image time fall).

    .venv/bin/python benchmarks/scale.py [--base 1000] [--sizes 1,4,16] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

TARGET_PEAK_RATIO = 1.1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", type=int, default=1000)
    p.add_argument("--sizes", default="1,4,16")
    p.add_argument("--weights", default=common.MOBILENET_WEIGHTS)
    args = common.parse_with_budget(p, argv, head_epochs=1, finetune_epochs=1)
    rows = []
    for factor in [int(x) for x in args.sizes.split(",")]:
        images = args.base * factor
        data = common.generated_folder(os.path.join(args.work, f"scale_{images}"), 2, images // 2, seed=factor)
        out = os.path.join(args.work, f"scale_run_{images}")
        shutil.rmtree(out, ignore_errors=True)
        run = common.run_cli(["run", "--data", data, "--output", out, "--backbone", "mobilenet_v2", "--alpha",
                              "0.35", "--image-size", "160", "--weights", args.weights, "--no-early-stopping",
                              "--head-epochs", str(args.head_epochs), "--finetune-epochs", str(args.finetune_epochs),
                              "--accuracy-threshold", "0"], os.path.join(args.work, f"scale_{images}.log"))
        history = common.trainer_history(out)
        row = {"images": images, **run, "seconds_per_image": round(run["seconds"] / images, 4),
               "components": common.component_seconds(out), "trainer_input": history.get("input")}
        if rows:
            previous = rows[-1]
            row["marginal_seconds_per_image"] = round(
                (run["seconds"] - previous["seconds"]) / (images - previous["images"]), 4)
        rows.append(row)
        streamed = row["trainer_input"] and not row["trainer_input"]["in_memory"]
        print(f"{images:>6} images: {run['seconds']:.0f} s (exit {run['exit_code']}), "
              f"{row['seconds_per_image'] * 1000:.1f} ms/image"
              + (f", marginal {row['marginal_seconds_per_image'] * 1000:.1f} ms/image" if len(rows) > 1 else "")
              + f", peak {run['peak_mib']} MiB, Trainer input {'streamed' if streamed else 'in memory'}")
        print("        " + ", ".join(f"{k} {v:.0f} s" for k, v in row["components"].items()))
    first, last = rows[0], rows[-1]
    ratio = last["peak_mib"] / first["peak_mib"]
    marginal = [r["marginal_seconds_per_image"] for r in rows[1:]]
    print(f"peak memory {last['images']} / {first['images']} images: {ratio:.2f}x (target <= {TARGET_PEAK_RATIO}: "
          f"{'met' if ratio <= TARGET_PEAK_RATIO else 'NOT met'}); time per image "
          f"{last['seconds_per_image'] / first['seconds_per_image']:.2f}x"
          + (f"; marginal time per image, last / first step: {marginal[-1] / marginal[0]:.2f}x" if len(marginal) > 1
             else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "peak_ratio": ratio}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
