"""What the exported model, the pusher and the clients agree on with TF Serving: names and folder layout.

Importing this is free (TensorFlow is imported inside the functions that read folders): the trainer, the
pusher and the clients all import it without pulling in each other.
"""

import json
import os
from typing import Any, Dict, List, Tuple

SERVING_SIGNATURE = "serving_default"   # encoded image bytes in
EXAMPLES_SIGNATURE = "serving_examples"  # serialized tf.Example in
IMAGE_INPUT = "image_bytes"  # DT_STRING [batch]; TF Serving REST decodes {"b64": ...} into it
EXAMPLES_INPUT = "examples"  # DT_STRING [batch]
# The outputs of both serving signatures: per-class probabilities [batch, classes] in class-id order, the
# argmax id [batch] (int64) and its class name [batch] (string).
PROBABILITIES, CLASS_IDS, CLASSES = "probabilities", "class_ids", "classes"

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


def exported_task(saved_model_dir: str) -> Tuple[List[str], Dict[str, Any]]:
    """(class names in id order, the training config) that a pushed or trained SavedModel carries."""
    import tensorflow as tf

    with tf.io.gfile.GFile(os.path.join(saved_model_dir, LABELS_FILE)) as f:
        classes = [line.strip() for line in f.read().splitlines() if line.strip()]
    summary = os.path.join(saved_model_dir, SUMMARY_FILE)
    if not tf.io.gfile.exists(summary):
        return classes, {}
    with tf.io.gfile.GFile(summary) as f:
        return classes, json.load(f).get("config", {})
