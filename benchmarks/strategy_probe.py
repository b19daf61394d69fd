"""Measure the linear probe behind `--strategy auto` (trainer/strategy.py) on real photos and on generated data.

    .venv/bin/python benchmarks/strategy_probe.py [--shared ../shared] [--per-class 200] [--size 160]

Prints the cross-validated probe accuracy and its chance-normalised score for: cats vs dogs (../shared) with
the ImageNet MobileNetV2-0.35 weights; noise textures that differ only in the phase of a faint 1-pixel
checkerboard (learnable, but not what ImageNet features describe); and noise with random labels (nothing to
find: the floor). The SIMILAR_SCORE threshold was set between the photos and the generated data.
"""

from __future__ import annotations

import argparse
import glob
import os
import time

import numpy as np
from PIL import Image

from tfx_image_finetune.trainer.keras2 import keras, tf
from tfx_image_finetune.trainer.strategy import probe_accuracy, similarity_score


def features(images: np.ndarray, weights: str, size: int) -> np.ndarray:
    """Pooled MobileNetV2-0.35 features of uint8 images [n, size, size, 3]."""
    base = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=0.35, include_top=False,
                                          weights=weights, pooling="avg")
    x = keras.applications.mobilenet_v2.preprocess_input(images.astype("float32"))
    return base.predict(x, batch_size=64, verbose=0)


def photos(root: str, per_class: int, size: int):
    images, labels = [], []
    for label, name in enumerate(("cats", "dogs")):
        for path in sorted(glob.glob(os.path.join(root, "train", name, "*.jpg")))[:per_class]:
            images.append(np.asarray(Image.open(path).convert("RGB").resize((size, size))))
            labels.append(label)
    return np.stack(images), np.array(labels)


def textures(n: int, size: int, random_labels: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    images = rng.normal(128, 40, (n, size, size, 3))
    if not random_labels:
        checker = (np.indices((size, size)).sum(axis=0) % 2)[None, :, :, None]
        phase = np.where(labels[:, None, None, None] == 1, checker, 1 - checker)
        images += 12 * phase
    else:
        labels = rng.permutation(labels)
    return np.clip(images, 0, 255).astype("uint8"), labels


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--size", type=int, default=160)
    args = parser.parse_args()
    weights = os.path.join(args.shared, "weights", "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5")
    n = 2 * args.per_class
    for name, (images, labels) in [
        ("cats vs dogs (photos)", photos(os.path.join(args.shared, "data", "cats_and_dogs_filtered"),
                                         args.per_class, args.size)),
        ("checkerboard-phase noise textures", textures(n, args.size, False)),
        ("noise, random labels", textures(n, args.size, True)),
    ]:
        start = time.monotonic()
        accuracy = probe_accuracy(features(images, weights, args.size), labels, 2)
        print(f"{name:36s} probe accuracy {accuracy:.3f}  score {similarity_score(accuracy, 2):+.2f}  "
              f"({len(labels)} images, {time.monotonic() - start:.1f} s)")


if __name__ == "__main__":
    main()
