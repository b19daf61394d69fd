"""The exported SavedModel: the Transform graph inside, explicit signatures, class names in the graph.

Signatures:
- serving_default: serialized tf.Example (`examples`) -> probabilities, class_ids, classes.
- transform_features: serialized tf.Example -> the transformed label, for TFMA's label.
- evaluation: serialized tf.Example -> `score` (positive-class probability for two classes, per-class
  probabilities otherwise): the shape TFMA's binary / sparse categorical metrics expect.
"""

from __future__ import annotations

from typing import Dict, List

import tensorflow as tf
import tensorflow_transform as tft

from trainer.model import probabilities
from trainer.transform import IMAGE_XF, LABEL_XF

EXAMPLES_SPEC = tf.TensorSpec([None], tf.string, name="examples")


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
        self._image_key = image_key

    def _outputs(self, transformed_images: tf.Tensor) -> Dict[str, tf.Tensor]:
        probs = probabilities(self.model(transformed_images, training=False), self.num_classes)
        class_ids = tf.argmax(probs, axis=1)
        return {"probabilities": probs, "class_ids": class_ids, "classes": tf.gather(self.class_names, class_ids)}

    def _transform_images(self, serialized: tf.Tensor) -> tf.Tensor:
        return self.tft_layer(tf.io.parse_example(serialized, self._image_spec))[IMAGE_XF]

    @tf.function(input_signature=[EXAMPLES_SPEC])
    def serve_examples(self, examples):
        return self._outputs(self._transform_images(examples))

    @tf.function(input_signature=[EXAMPLES_SPEC])
    def transform_features(self, examples):
        parsed = tf.io.parse_example(examples, {**self._image_spec, **self._label_spec})
        return {LABEL_XF: self.tft_layer(parsed)[LABEL_XF]}

    @tf.function(input_signature=[EXAMPLES_SPEC])
    def evaluation(self, examples):
        probs = self._outputs(self._transform_images(examples))["probabilities"]
        return {"score": probs[:, 1] if self.num_classes == 2 else probs}

    def signatures(self) -> Dict[str, tf.types.experimental.ConcreteFunction]:
        return {
            "serving_default": self.serve_examples.get_concrete_function(),
            "transform_features": self.transform_features.get_concrete_function(),
            "evaluation": self.evaluation.get_concrete_function(),
        }


def export_saved_model(module: ServingModule, export_dir: str) -> None:
    tf.saved_model.save(module, export_dir, signatures=module.signatures())
