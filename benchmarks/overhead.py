"""The pipeline's fixed overhead on a small folder: everything but `fit`, per component.

A 600-image, 5-class generated folder (160 px), MobileNetV2-0.35 with the shared ImageNet weights, 20 + 10
epochs by default, phase 1 on images (--feature-views 0) so `fit` is the same work as the issue's baseline.
Prints the whole run's wall time (the CLI process, imports included), the Trainer's fit seconds
(history.json), the rest, and seconds per component (MLMD). Target: everything but fit under 120 s.

    .venv/bin/python benchmarks/overhead.py [--head-epochs 20 --finetune-epochs 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

TARGET_SECONDS = 120


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=600)
    p.add_argument("--classes", type=int, default=5)
    p.add_argument("--feature-views", type=int, default=0)
    args = common.parse_with_budget(p, argv, head_epochs=20, finetune_epochs=10)
    data = common.generated_folder(os.path.join(args.work, f"overhead_{args.classes}x{args.images // args.classes}"),
                                   args.classes, args.images // args.classes)
    out = os.path.join(args.work, "overhead_run")
    shutil.rmtree(out, ignore_errors=True)
    run = common.run_cli(["run", "--data", data, "--output", out, "--backbone", "mobilenet_v2", "--alpha", "0.35",
                          "--image-size", "160", "--weights", common.MOBILENET_WEIGHTS, "--no-early-stopping",
                          "--head-epochs", str(args.head_epochs), "--finetune-epochs", str(args.finetune_epochs),
                          "--feature-views", str(args.feature_views), "--accuracy-threshold", "0"],
                         os.path.join(args.work, "overhead.log"))
    fit = common.fit_seconds(common.trainer_history(out))
    components = common.component_seconds(out)
    result = {**run, "fit_seconds": fit, "other_seconds": round(run["seconds"] - fit, 1), "components": components}
    print(f"wall {run['seconds']:.0f} s (exit {run['exit_code']}, peak {run['peak_mib']} MiB): fit {fit:.0f} s, "
          f"everything else {result['other_seconds']:.0f} s (target < {TARGET_SECONDS} s: "
          f"{'met' if result['other_seconds'] < TARGET_SECONDS else 'NOT met'})")
    print("per component: " + ", ".join(f"{k} {v:.1f} s" for k, v in components.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0 if run["exit_code"] in (0, 3) else 1


if __name__ == "__main__":
    sys.exit(main())
