"""What TFMA's confidence intervals cost the Evaluator, and how wide they come out.

TFMA over N binary predictions of known accuracy with the pipeline's EvalConfig (tests.helpers.tfma_evaluation:
the predictions are read as features, no model), without intervals, with the jackknife the pipeline uses and with
the Poisson bootstrap. Prints seconds and the ratio to the run without intervals (the model's inference, the same
for all three in the Evaluator, is not part of it), and each interval's half-width beside the binomial one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

METHODS = ("none", "JACKKNIFE", "POISSON_BOOTSTRAP")


def predictions(n: int, accuracy: float, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    right = rng.random(n) < accuracy
    scores = [[0.75 if (y == 1) == ok else 0.25] for y, ok in zip(labels, right)]
    return labels.tolist(), scores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="57,500", help="test-split sizes, comma-separated")
    parser.add_argument("--accuracy", type=float, default=0.75)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args()
    from tests.helpers import tfma_evaluation
    from tfx_image_finetune.report import evaluation

    rows = []
    for n in map(int, args.sizes.split(",")):
        for seed in range(args.seeds):
            labels, scores = predictions(n, args.accuracy, seed)
            base = None
            for method in METHODS:
                with tempfile.TemporaryDirectory() as tmp:
                    start = time.perf_counter()
                    ev = evaluation.read(tfma_evaluation(tmp, labels, scores, 2, 0.5, interval_method=method))
                    seconds = time.perf_counter() - start
                value = ev["metrics"]["binary_accuracy"]
                low, high = ev["intervals"].get("binary_accuracy", (math.nan, math.nan))
                base = seconds if method == "none" else base
                row = {"images": n, "seed": seed, "method": method, "accuracy": value, "seconds": seconds,
                       "ratio": seconds / base, "half_width": (high - low) / 2,
                       "binomial_half_width": 1.96 * math.sqrt(value * (1 - value) / n)}
                rows.append(row)
                print(f"{n:5d} images seed {seed} {method:17s} {seconds:6.1f} s  x{row['ratio']:.2f}  "
                      f"accuracy {value:.3f}  half-width {row['half_width']:.3f} "
                      f"(binomial {row['binomial_half_width']:.3f})", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"load_average": os.getloadavg(), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
