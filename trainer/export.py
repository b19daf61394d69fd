"""The exported SavedModel: the Transform graph inside, explicit signatures, class names in the graph.

Signatures:
- serving_default: encoded image bytes (`image_bytes`, DT_STRING [batch]; TF Serving's REST API takes them as
  {"b64": ...} and decodes the base64 itself) -> probabilities, class_ids, classes.
- serving_examples: serialized tf.Example (`examples`) -> the same outputs.
- transform_features: serialized tf.Example -> the transformed label, for TFMA's label.
- evaluation: serialized tf.Example -> `score` (positive-class probability for two classes, per-class
  probabilities otherwise): the shape TFMA's binary / sparse categorical metrics expect.
Plus two functions that are not signatures, for explanations (serving_contract.PIXELS_FUNCTION: image bytes ->
the network's input; PIXEL_PROBABILITIES_FUNCTION: that input -> probabilities, differentiable).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List

import tensorflow as tf
import tensorflow_transform as tft

from tfx_image_finetune.trainer.keras2 import without_layer_traces
from tfx_image_finetune.trainer.model import probabilities
from tfx_image_finetune.serving_contract import (CLASS_IDS, CLASSES, EXAMPLES_INPUT, EXAMPLES_SIGNATURE,
                                                 IMAGE_INPUT, LABELS_FILE, PIXEL_PROBABILITIES_FUNCTION,
                                                 PIXELS_FUNCTION, PROBABILITIES, SERVING_SIGNATURE,
                                                 SUMMARY_FILE, WARMUP_FILE)
from tfx_image_finetune.trainer.transform import IMAGE_XF, LABEL_XF, checked_label_ids

EXAMPLES_SPEC = tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)
# The Evaluator's signatures decode at most this many images at a time, whatever batch TFMA hands them (it
# grows its batches while they fit, and decoded images are ~100x their JPEGs: TFX issue 5777).
EVALUATION_CHUNK = 32


@tf.autograph.experimental.do_not_convert  # a plain graph loop: fn is called as is, not converted
def in_chunks(fn, examples: tf.Tensor, chunk: int = EVALUATION_CHUNK) -> tf.Tensor:
    """fn(examples) computed `chunk` rows at a time and concatenated (memory bounded by the chunk)."""
    steps = (tf.shape(examples)[0] + chunk - 1) // chunk

    def body(i, pieces):
        return i + 1, pieces.write(i, tf.cast(fn(examples[i * chunk:(i + 1) * chunk]), tf.float32))

    start = (tf.constant(0), tf.TensorArray(tf.float32, size=steps, infer_shape=False))
    _, pieces = tf.while_loop(lambda i, _: i < steps, body, start)
    return pieces.concat()
IMAGES_SPEC = tf.TensorSpec([None], tf.string, name=IMAGE_INPUT)


class ServingModule(tf.Module):
    """Holds the Keras model, the Transform layer and the class names, and defines the signatures."""

    def __init__(self, model, tft_output: tft.TFTransformOutput, class_names: List[str],
                 image_key: str, label_key: str):
        super().__init__()
        self.model = model
        self.tft_layer = tft_output.transform_features_layer()
        self.class_names = tf.constant(class_names)
        self.num_classes = len(class_names)
        raw_spec = tft_output.raw_feature_spec()
        self._image_spec = {image_key: raw_spec[image_key]}
        self._label_spec = {label_key: raw_spec[label_key]}
        self._image_key, self._label_key = image_key, label_key
        pixels_spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name="pixels")
        setattr(self, PIXELS_FUNCTION, tf.function(self._pixels, input_signature=[IMAGES_SPEC]))
        setattr(self, PIXEL_PROBABILITIES_FUNCTION, tf.function(self._probabilities_of_pixels,
                                                                input_signature=[pixels_spec]))

    def _outputs(self, transformed_images: tf.Tensor) -> Dict[str, tf.Tensor]:
        probs = self._probabilities_of_pixels(transformed_images)
        class_ids = tf.argmax(probs, axis=1)
        return {PROBABILITIES: probs, CLASS_IDS: class_ids, CLASSES: tf.gather(self.class_names, class_ids)}

    def _transform_images(self, serialized: tf.Tensor) -> tf.Tensor:
        return self.tft_layer(tf.io.parse_example(serialized, self._image_spec))[IMAGE_XF]

    def _probabilities_of_pixels(self, images):
        return probabilities(self.model(images, training=False), self.num_classes)

    def _pixels(self, image_bytes):
        raw = {self._image_key: tf.reshape(image_bytes, [-1, 1])}  # the raw feature's [batch, 1] shape
        return self.tft_layer(raw)[IMAGE_XF]

    @tf.function(input_signature=[IMAGES_SPEC])
    def serve_images(self, image_bytes):
        return self._outputs(self._pixels(image_bytes))

    @tf.function(input_signature=[EXAMPLES_SPEC])
    def serve_examples(self, examples):
        return self._outputs(self._transform_images(examples))

    def _label_ids(self, examples):
        parsed = tf.io.parse_example(examples, {**self._image_spec, **self._label_spec})
        return checked_label_ids(parsed[self._label_key], self.tft_layer(parsed)[LABEL_XF])

    def _score(self, examples):
        probs = self._outputs(self._transform_images(examples))[PROBABILITIES]
        return probs[:, 1] if self.num_classes == 2 else probs

    @tf.function(input_signature=[EXAMPLES_SPEC])
    def transform_features(self, examples):  # the Transform layer decodes the images too: chunked as well
        return {LABEL_XF: tf.cast(in_chunks(self._label_ids, examples), tf.int64)}

    @tf.function(input_signature=[EXAMPLES_SPEC])
    def evaluation(self, examples):
        return {"score": in_chunks(self._score, examples)}

    def signatures(self) -> Dict[str, tf.types.experimental.ConcreteFunction]:
        return {
            SERVING_SIGNATURE: self.serve_images.get_concrete_function(),
            EXAMPLES_SIGNATURE: self.serve_examples.get_concrete_function(),
            "transform_features": self.transform_features.get_concrete_function(),
            "evaluation": self.evaluation.get_concrete_function(),
        }


def export_saved_model(module: ServingModule, export_dir: str, class_names: List[str],
                       summary: Dict[str, Any], warmup_images: List[bytes]) -> None:
    """The SavedModel plus assets.extra/: labels, the training summary, and TF Serving warmup requests."""
    with without_layer_traces():
        tf.saved_model.save(module, export_dir, signatures=module.signatures())
    tf.io.gfile.makedirs(os.path.dirname(os.path.join(export_dir, LABELS_FILE)))
    with tf.io.gfile.GFile(os.path.join(export_dir, LABELS_FILE), "w") as f:
        f.write("".join(f"{name}\n" for name in class_names))
    with tf.io.gfile.GFile(os.path.join(export_dir, SUMMARY_FILE), "w") as f:
        json.dump(summary, f, indent=2)
    write_warmup_requests(os.path.join(export_dir, WARMUP_FILE), warmup_images)


def write_warmup_requests(path: str, images: List[bytes], model_name: str = "model") -> None:
    """PredictionLog records for serving_default, which TF Serving replays before it takes traffic."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    with tf.io.TFRecordWriter(path) as writer:
        for image in images:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=SERVING_SIGNATURE))
            request.inputs[IMAGES_SPEC.name].CopyFrom(tf.make_tensor_proto([image], dtype=tf.string))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
