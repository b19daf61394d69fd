"""What an explanation costs (trainer/explain.py), against classifying the same image, measured in the same run.

Per backbone and size: seconds to classify one image (the baseline) and to explain it (2 baselines x 16 steps,
one batch of 32 forward and backward passes), and the ratio. Random weights: the cost does not depend on them.
The report explains up to 8 wrong + 24 right test images; `predict --explain` one per answered image.

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
    from tfx_image_finetune.trainer.explain import explain_pixels
    from tfx_image_finetune.trainer.keras2 import tf
    from tfx_image_finetune.trainer.model import build_model, probabilities

    for backbone, alpha, size in CASES:
        cfg = ModelConfig(backbone=backbone, alpha=alpha, image_size=size, weights="none")
        model, _ = build_model(cfg, 2, None)
        fn = tf.function(lambda x: probabilities(model(x, training=False), 2))
        image = np.random.default_rng(0).uniform(-1, 1, (size, size, 3)).astype("float32")
        fn(image[None]), explain_pixels(fn, image)  # traced once, outside the timing
        start = time.perf_counter()
        for _ in range(args.repeats):
            fn(image[None]).numpy()
        classify = (time.perf_counter() - start) / args.repeats
        start = time.perf_counter()
        for _ in range(args.repeats):
            explain_pixels(fn, image)
        explain = (time.perf_counter() - start) / args.repeats
        print(f"{backbone} {alpha} {size}px: classify {classify:.3f} s, explain {explain:.2f} s "
              f"({explain / classify:.0f}x); the report's 32 images: {32 * explain:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
