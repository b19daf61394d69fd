"""What the exported model, the pusher and the clients agree on with TF Serving: names and folder layout.

Importing this is free (TensorFlow is imported inside the one function that reads folders).
"""

import os
from typing import List

SERVING_SIGNATURE = "serving_default"   # encoded image bytes in
EXAMPLES_SIGNATURE = "serving_examples"  # serialized tf.Example in
IMAGE_INPUT = "image_bytes"  # DT_STRING [batch]; TF Serving REST decodes {"b64": ...} into it
EXAMPLES_INPUT = "examples"  # DT_STRING [batch]
OUTPUTS = ("probabilities", "class_ids", "classes")

ASSETS_EXTRA = "assets.extra"  # TF Serving reads the warmup file here; the rest travels along
LABELS_FILE = os.path.join(ASSETS_EXTRA, "labels.txt")  # class names, one per line, in class-id order
SUMMARY_FILE = os.path.join(ASSETS_EXTRA, "training_summary.json")
WARMUP_FILE = os.path.join(ASSETS_EXTRA, "tf_serving_warmup_requests")  # PredictionLog TFRecords
SOURCE_MODEL_FILE = os.path.join(ASSETS_EXTRA, "source_model_uri")  # written by the pusher


def versions(model_base: str) -> List[int]:
    """The versions TF Serving would see under <model_base>: all-digit folder names, oldest first."""
    import tensorflow as tf

    if not tf.io.gfile.isdir(model_base):
        return []
    return sorted(int(name.rstrip("/")) for name in tf.io.gfile.listdir(model_base) if name.rstrip("/").isdigit())
