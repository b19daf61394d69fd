"""The one way this project gets Keras: tf_keras (Keras 2), which TFT and TFMA require.

Also tells TF 2.16's autograph not to convert tf_keras' own code: its skip list knows `keras` but not the
`tf_keras` package, so every fit() re-converted all of tf_keras' layer sources (measured here: 53 s before a
MobileNetV2 fit() took its first step, 5 s with this rule).
"""

import contextlib
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402  (after the env var)
import tf_keras as keras  # noqa: E402

try:
    from tensorflow.python.autograph.core import config as _autograph_config

    if not any(getattr(rule, "_prefix", None) == "tf_keras" for rule in _autograph_config.CONVERSION_RULES):
        _autograph_config.CONVERSION_RULES = (
            _autograph_config.DoNotConvert("tf_keras"),
        ) + tuple(_autograph_config.CONVERSION_RULES)
except ImportError:  # a TF without this module: nothing to fix
    pass



@contextlib.contextmanager
def without_layer_traces():
    """tf.saved_model.save of a module holding a Keras model also traces every layer's call function (Keras'
    own metadata, for keras.models.load_model). The exported model is used through its signatures only (TF
    Serving, TFMA, the clients) and warm start reads its variables, so skip the traces (measured here with
    MobileNetV2-0.35: save 22 -> 5 s, tf.saved_model.load 6.7 -> 1.7 s)."""
    try:
        from tf_keras.src.saving.legacy.saved_model.utils import keras_option_scope
    except ImportError:  # another tf_keras layout: save with traces, as before
        yield
        return
    with keras_option_scope(save_traces=False):
        yield


__all__ = ["keras", "tf", "without_layer_traces"]
