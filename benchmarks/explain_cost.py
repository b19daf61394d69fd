"""What an explanation costs (trainer/explain.py), against classifying the same image, measured in the same run.

Per backbone and size: seconds to classify one image (the baseline) and to explain it (2 baselines x STEPS steps
for `predict --explain`, x REPORT_STEPS for the report's up to 8 wrong + 24 right test images: one batch of
forward and backward passes), and the ratio. Random weights: the cost does not depend on them.

    .venv/bin/python benchmarks/explain_cost.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CASES = (("mobilenet_v2", 0.35, 96), ("mobilenet_v2", 0.35, 224), ("xception", 1.0, 150))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    print(common.machine_line())
    import numpy as np

    from tfx_image_finetune.config import ModelConfig
    from tfx_image_finetune.report.run_report import REPORT_STEPS
    from tfx_image_finetune.trainer.explain import STEPS, explain_pixels
    from tfx_image_finetune.trainer.keras2 import tf
    from tfx_image_finetune.trainer.model import build_model, probabilities

    for backbone, alpha, size in CASES:
        cfg = ModelConfig(backbone=backbone, alpha=alpha, image_size=size, weights="none")
        model, _ = build_model(cfg, 2, None)
        fn = tf.function(lambda x: probabilities(model(x, training=False), 2))
        image = np.random.default_rng(0).uniform(-1, 1, (size, size, 3)).astype("float32")
        fn(image[None]), explain_pixels(fn, image), explain_pixels(fn, image, steps=REPORT_STEPS)  # traced first
        start = time.perf_counter()
        for _ in range(args.repeats):
            fn(image[None]).numpy()
        classify = (time.perf_counter() - start) / args.repeats
        for steps, who in ((STEPS, "predict --explain"), (REPORT_STEPS, "the report")):
            start = time.perf_counter()
            for _ in range(args.repeats):
                explain_pixels(fn, image, steps=steps)
            explain = (time.perf_counter() - start) / args.repeats
            print(f"{backbone} {alpha} {size}px: classify {classify:.3f} s; explain ({who}, {steps} steps per "
                  f"baseline) {explain:.2f} s ({explain / classify:.0f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
