"""What the exported model, the pusher and the clients agree on with TF Serving: names, folder layout, and the
task an export solves (so the Evaluator's baseline and the Trainer's warm start judge "same task" alike).

Importing this is free (TensorFlow is imported inside the functions that read folders): the trainer, the
pusher and the clients all import it without pulling in each other.
"""

import json
import os
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

SERVING_SIGNATURE = "serving_default"   # encoded image bytes in
EXAMPLES_SIGNATURE = "serving_examples"  # serialized tf.Example in
IMAGE_INPUT = "image_bytes"  # DT_STRING [batch]; TF Serving REST decodes {"b64": ...} into it
EXAMPLES_INPUT = "examples"  # DT_STRING [batch]
# The outputs of both serving signatures: per-class probabilities [batch, classes] in class-id order, the
# argmax id [batch] (int64) and its class name [batch] (string).
PROBABILITIES, CLASS_IDS, CLASSES = "probabilities", "class_ids", "classes"
# Explanations (trainer/explain.py) need gradients with respect to the pixels the network sees, which the
# byte-string signatures cannot give: two functions of the exported module (not signatures: TF Serving has no
# use for them), differentiable after tf.saved_model.load.
PIXELS_FUNCTION = "pixels"  # image_bytes [batch] -> the network's input [batch, size, size, 3] in [-1, 1]
PIXEL_PROBABILITIES_FUNCTION = "probabilities_of_pixels"  # that input -> probabilities [batch, classes]

ASSETS_EXTRA = "assets.extra"  # TF Serving reads the warmup file here; the rest travels along
LABELS_FILE = os.path.join(ASSETS_EXTRA, "labels.txt")  # class names, one per line, in class-id order
SUMMARY_FILE = os.path.join(ASSETS_EXTRA, "training_summary.json")
WARMUP_FILE = os.path.join(ASSETS_EXTRA, "tf_serving_warmup_requests")  # PredictionLog TFRecords
SOURCE_MODEL_FILE = os.path.join(ASSETS_EXTRA, "source_model_uri")  # written by the pusher

# --tflite: the TFLite classifier, in the Trainer's model artifact (<uri>/tflite/) and beside a pushed version
# (<version>/tflite/). Input [1, S, S, 3] RGB pixels 0..255 (float32, or uint8 for int8), the [-1, 1]
# rescaling inside; output [1, classes] probabilities in labels.txt order (float32, or uint8 + quantization).
TFLITE_DIR = "tflite"
TFLITE_FILE = "model.tflite"
TFLITE_LABELS = "labels.txt"
TFLITE_EXPORT_INFO = "export.json"  # in the Trainer's tflite/ only: mode, bytes, seconds the export took
PIXEL_SCALE = 127.5  # Transform's images are pixels / PIXEL_SCALE - 1 (in [-1, 1])


def pixels_of(scaled):
    """Transform's [-1, 1] images back to RGB 0..255 (the TFLite model's input); numpy or TF."""
    return (scaled + 1.0) * PIXEL_SCALE


def tflite_probabilities(interpreter, pixels):
    """One image's class probabilities (float32 numpy) from a TFLite interpreter of this contract: `pixels`
    [S, S, 3] RGB 0..255; quantized inputs and outputs (int8 export) go through their quantization parameters."""
    import numpy as np

    given, answer = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    image = np.asarray(pixels, np.float32)[None]
    if given["dtype"] != np.float32:
        scale, zero = given["quantization"]
        limits = np.iinfo(given["dtype"])
        image = np.clip(np.round(image / scale + zero), limits.min, limits.max).astype(given["dtype"])
    interpreter.set_tensor(given["index"], image)
    interpreter.invoke()
    out = interpreter.get_tensor(answer["index"])[0]
    if answer["dtype"] != np.float32:
        scale, zero = answer["quantization"]
        out = (out.astype(np.float32) - zero) * scale
    return out


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


class Task(NamedTuple):
    """What a model solves: its class list (id order), input image size and the features it reads.

    Two models of one task answer the same question from the same examples, so one can be the other's
    baseline (components/evaluator) or seed its weights (trainer/warm_start.py, which also wants the same network).
    """

    classes: Optional[List[str]]  # None: not known (e.g. compiled without listing the data); any matches
    image_size: Optional[int]
    features: Optional[Tuple[Optional[str], Optional[str]]]  # (image key, label key); None: not known, any matches

    @classmethod
    def of_config(cls, classes: Optional[List[str]], config: Dict[str, Any]) -> "Task":
        """The task of an export, from exported_task's (classes, training config): TrainerConfig's "transform"
        section, or the "data" section and top-level image size of exports before it."""
        keys = config.get("transform") or config.get("data", {})
        size = keys.get("image_size", config.get("image_size"))
        return cls(classes, size, (keys.get("image_key"), keys.get("label_key")))


def task_mismatch(this: Task, blessed: Task, this_is: str = "this model") -> str:
    """'' when the latest blessed model's task (`blessed`) is `this` one, else why not (`this_is` names `this`)."""
    if this.classes is not None and this.classes != blessed.classes:
        return f"the latest blessed model has classes {blessed.classes}, {this_is} {this.classes}"
    if this.image_size != blessed.image_size:
        return f"the latest blessed model takes {blessed.image_size} px images, {this_is} {this.image_size} px"
    if this.features is not None and this.features != blessed.features:  # its transform would parse other features
        return f"the latest blessed model reads features {list(blessed.features)}, {this_is} {list(this.features)}"
    return ""
