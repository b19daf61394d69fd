"""TFLiteGate's executor: both models over the split's raw examples, one batch at a time (no Beam: a test split
is small, and the TFLite interpreter runs one image at a time on one thread, which is also its latency).

The SavedModel answers the serialized examples through its `serving_examples` signature; the TFLite model
gets the same examples through the Transform graph, turned back into 0..255 pixels (its contract).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict

from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from tfx_image_finetune.components.tflite_gate import latency
from tfx_image_finetune.data_contract import EXAMPLES_COMPRESSION
from tfx_image_finetune.serving_contract import (EXAMPLES_INPUT, EXAMPLES_SIGNATURE, PROBABILITIES, TFLITE_DIR,
                                                 TFLITE_EXPORT_INFO, TFLITE_FILE, pixels_of,
                                                  tflite_probabilities)

EVALUATION_FILE = "evaluation.json"
LATENCY_IMAGES = 20  # the first examples of the split, timed one at a time on one thread (latency.py)
PASSED_PROPERTY = "passed"  # on the TFLiteEvaluation: 1 when the TFLite model may be pushed
REASON_PROPERTY = "reason"  # why (both accuracies and the margin)
BATCH = 32


def evaluate(example_files, saved_model_dir: str, tflite_path: str, tft_output, image_feature: str,
             label_feature: str) -> Dict[str, Any]:
    """Accuracy of both models, their top-1 agreement, file sizes, and latency per image on one thread."""
    import numpy as np
    import tensorflow as tf

    serve = tf.saved_model.load(saved_model_dir).signatures[EXAMPLES_SIGNATURE]
    interpreter = tf.lite.Interpreter(model_path=tflite_path, num_threads=1)
    interpreter.allocate_tensors()
    raw_spec, layer = tft_output.raw_feature_spec(), tft_output.transform_features_layer()
    labels, saved, lite, timed = [], [], [], ([], [])
    for batch in tf.data.TFRecordDataset(example_files, compression_type=EXAMPLES_COMPRESSION).batch(BATCH):
        transformed = layer(tf.io.parse_example(batch, raw_spec))
        labels.extend(tf.reshape(transformed[label_feature], [-1]).numpy())
        saved.extend(np.argmax(serve(**{EXAMPLES_INPUT: batch})[PROBABILITIES].numpy(), axis=1))
        pixels = pixels_of(transformed[image_feature].numpy())
        lite.extend(int(np.argmax(tflite_probabilities(interpreter, image))) for image in pixels)
        if len(timed[0]) < LATENCY_IMAGES:
            timed[0].extend(batch.numpy()[:LATENCY_IMAGES - len(timed[0])])
            timed[1].extend(pixels[:LATENCY_IMAGES - len(timed[1])])
    if not labels:
        raise ValueError(f"no examples in {example_files} to judge the TFLite model on")
    labels, saved, lite = np.array(labels), np.array(saved), np.array(lite)
    return {"examples": len(labels), "saved_model_accuracy": float(np.mean(saved == labels)),
            "tflite_accuracy": float(np.mean(lite == labels)), "agreement": float(np.mean(lite == saved)),
            "tflite_bytes": tf.io.gfile.stat(tflite_path).length,
            "saved_model_bytes": folder_bytes(saved_model_dir),
            **latency.measure(saved_model_dir, tflite_path, *timed)}


def folder_bytes(folder: str) -> int:
    import tensorflow as tf

    return sum(tf.io.gfile.stat(os.path.join(root, name)).length
               for root, _, names in tf.io.gfile.walk(folder) for name in names)


def verdict(result: Dict[str, Any], max_accuracy_drop: float) -> Dict[str, Any]:
    """`result` + passed and reason: the TFLite model passes if at most `max_accuracy_drop` below the SavedModel."""
    drop = result["saved_model_accuracy"] - result["tflite_accuracy"]
    passed = drop <= max_accuracy_drop + 1e-9
    reason = (f"TFLite accuracy {result['tflite_accuracy']:.4f} vs SavedModel {result['saved_model_accuracy']:.4f} "
              f"on {result['examples']} test examples ({abs(100 * drop):.1f} points {'below' if drop >= 0 else 'above'}; "
              f"allowed {100 * max_accuracy_drop:.1f} below)")
    return {**result, "max_accuracy_drop": max_accuracy_drop, "passed": passed, "reason": reason}


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        import tensorflow as tf
        import tensorflow_transform as tft
        from tfx.utils import path_utils

        model = artifact_utils.get_single_instance(input_dict["model"])
        examples = artifact_utils.get_split_uri(input_dict["examples"], exec_properties["split"])
        tflite_path = os.path.join(model.uri, TFLITE_DIR, TFLITE_FILE)
        if not tf.io.gfile.exists(tflite_path):
            raise FileNotFoundError(f"the Trainer wrote no TFLite model at {tflite_path} (--tflite none?)")
        result = verdict(evaluate(
            tf.io.gfile.glob(os.path.join(examples, "*")), path_utils.serving_model_path(model.uri), tflite_path,
            tft.TFTransformOutput(artifact_utils.get_single_uri(input_dict["transform_graph"])),
            exec_properties["image_feature"], exec_properties["label_feature"]),
            float(exec_properties["max_accuracy_drop"]))
        with tf.io.gfile.GFile(os.path.join(model.uri, TFLITE_DIR, TFLITE_EXPORT_INFO)) as f:
            result["export"] = json.load(f)
        evaluation = artifact_utils.get_single_instance(output_dict["evaluation"])
        with tf.io.gfile.GFile(os.path.join(evaluation.uri, EVALUATION_FILE), "w") as f:
            json.dump(result, f, indent=2)
        evaluation.set_int_custom_property(PASSED_PROPERTY, int(result["passed"]))
        evaluation.set_string_custom_property(REASON_PROPERTY, result["reason"])
