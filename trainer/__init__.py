"""Model code: Transform's preprocessing_fn, the Keras model, the Trainer's run_fn and the exported signatures."""

import os

# Keras 2 (tf_keras), as TFT and TFMA need; set before anything imports TensorFlow. The code also imports
# tf_keras by name, so it never depends on which Keras `tf.keras` resolved to first.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
