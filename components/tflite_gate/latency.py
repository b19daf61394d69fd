"""Latency per image on one CPU thread, SavedModel and TFLite, in a process of its own.

TensorFlow fixes its thread pools when it starts, so one thread is only possible in a fresh process
(TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS = 1). The SavedModel is timed as its clients call it (one
serialized example: decode, resize and the network); the TFLite model as its clients call it (one image's pixels).

    python -m tfx_image_finetune.components.tflite_gate.latency SAVED_MODEL TFLITE EXAMPLES.npy PIXELS.npy
prints {"saved_model_ms_per_image": ..., "tflite_ms_per_image": ...}.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1"}
WARMUP = 2


def measure(saved_model_dir: str, tflite_path: str, examples: List[bytes], pixels) -> Dict[str, float]:
    """Runs this module in a one-thread process over `examples` (serialized) and `pixels` (the same images)."""
    import numpy as np

    with tempfile.TemporaryDirectory() as scratch:
        np.save(os.path.join(scratch, "examples.npy"), np.array(examples, dtype=object), allow_pickle=True)
        np.save(os.path.join(scratch, "pixels.npy"), np.asarray(pixels, np.float32))
        done = subprocess.run([sys.executable, "-m", __name__, saved_model_dir, tflite_path,
                               os.path.join(scratch, "examples.npy"), os.path.join(scratch, "pixels.npy")],
                              capture_output=True, text=True, env={**os.environ, **ONE_THREAD}, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the latency measurement failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _per_image_ms(call, items) -> float:
    for item in items[:WARMUP]:
        call(item)
    start = time.perf_counter()
    for item in items:
        call(item)
    return 1000 * (time.perf_counter() - start) / len(items)


def main(saved_model_dir: str, tflite_path: str, examples_npy: str, pixels_npy: str) -> None:
    import numpy as np
    import tensorflow as tf

    from tfx_image_finetune.serving_contract import EXAMPLES_INPUT, EXAMPLES_SIGNATURE, tflite_probabilities

    examples, pixels = np.load(examples_npy, allow_pickle=True), np.load(pixels_npy)
    serve = tf.saved_model.load(saved_model_dir).signatures[EXAMPLES_SIGNATURE]
    interpreter = tf.lite.Interpreter(model_path=tflite_path, num_threads=1)
    interpreter.allocate_tensors()
    print(json.dumps({
        "saved_model_ms_per_image": _per_image_ms(lambda e: serve(**{EXAMPLES_INPUT: tf.constant([e])}), list(examples)),
        "tflite_ms_per_image": _per_image_ms(lambda p: tflite_probabilities(interpreter, p), list(pixels)),
    }))


if __name__ == "__main__":
    main(*sys.argv[1:5])
