"""--tflite: the trained classifier as a TFLite file with metadata, beside the SavedModel in the model artifact.

Contract (serving_contract: TFLITE_*): input [1, S, S, 3] RGB pixels 0..255, already resized to the model's
size (float32; uint8 for int8), the [-1, 1] rescaling inside; output [1, classes] probabilities in labels.txt
order (float32; uint8 with its quantization for int8). Builtin ops only (no SELECT_TF_OPS), so any TFLite
runtime runs it. int8 is calibrated on training images passed through the same Transform graph as training;
the two extreme images (all 0, all 255) are added so the uint8 input's quantization is exactly the pixels
(scale 1, zero point 0). The metadata (tflite-support's image classifier writer) carries the labels and a
normalization of mean 0, std 1 (the model rescales itself), so the Task Library's ImageClassifier uses it as is.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from typing import Iterable, List

import numpy as np

from tfx_image_finetune.serving_contract import (TFLITE_DIR, TFLITE_EXPORT_INFO, TFLITE_FILE, TFLITE_LABELS,
                                                 pixels_of)
from tfx_image_finetune.trainer.keras2 import tf
from tfx_image_finetune.trainer.model import probabilities
from tfx_image_finetune.trainer.transform import scale_pixels

log = logging.getLogger(__name__)
REPRESENTATIVE_IMAGES = 100  # training images that calibrate the int8 quantization


def classifier_function(model, num_classes: int, image_size: int):
    """pixels [1, S, S, 3] float32 0..255 -> probabilities [1, classes]: the function the converter takes."""

    @tf.function(input_signature=[tf.TensorSpec([1, image_size, image_size, 3], tf.float32, name="image")])
    def classify(image):
        return probabilities(model(scale_pixels(image), training=False), num_classes)

    return classify.get_concrete_function()


def representative_pixels(transformed_images: Iterable[np.ndarray], count: int = REPRESENTATIVE_IMAGES) -> List[np.ndarray]:
    """Up to `count` Transform outputs ([-1, 1], batched) as pixels 0..255, plus an all-0 and an all-255 image."""
    out: List[np.ndarray] = []
    for batch in transformed_images:
        out.extend(pixels_of(np.asarray(batch, np.float32)))
        if len(out) >= count:
            break
    out = out[:count]
    if not out:
        raise ValueError("--tflite int8: no training images to calibrate the quantization with")
    return [np.zeros_like(out[0]), np.full_like(out[0], 255.0)] + out


def convert(model, num_classes: int, image_size: int, mode: str, representative=None) -> bytes:
    """The TFLite flatbuffer ('float' or 'int8'; int8 needs `representative` pixel images [S, S, 3])."""
    with warnings.catch_warnings():  # TF1's quantized_input_stats: calibration sets the input's quantization here
        warnings.filterwarnings("ignore", "Statistics for quantized inputs were expected", UserWarning)
        return converter(model, num_classes, image_size, mode, representative).convert()


def converter(model, num_classes: int, image_size: int, mode: str, representative=None):
    """The configured tf.lite.TFLiteConverter that `convert` runs."""
    function = classifier_function(model, num_classes, image_size)
    configured = tf.lite.TFLiteConverter.from_concrete_functions([function], model)
    # Convert the frozen function instead of first writing and reloading a SavedModel of it: the same flatbuffer,
    # 5-20x faster (benchmarks/tflite_conversion.py). TF's own switch; were it dropped, only the speed changes.
    configured.experimental_lower_to_saved_model = False
    if mode == "int8":
        configured.optimizations = [tf.lite.Optimize.DEFAULT]
        configured.representative_dataset = lambda: ([image[None].astype(np.float32)] for image in representative)
        configured.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        configured.inference_input_type = tf.uint8
        configured.inference_output_type = tf.uint8
    elif mode == "float":
        configured.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    else:
        raise ValueError(f"--tflite must be 'float' or 'int8', got {mode!r}")
    return configured


def load_libusb() -> None:
    """tflite-support 0.4.4's compiled modules (all of them) link libusb-1.0, a system library that a fresh
    Debian or container image lacks ("ImportError: libusb-1.0.so.0"). The copy in the libusb-package wheel is
    loaded first, on every Linux machine alike: the dynamic linker then finds it by its soname. Where the wheel
    has no library (a platform it has none for), the system's copy is left to be found. Call before importing
    tflite-support's metadata modules."""
    import ctypes

    import libusb_package  # a dependency (setup.py, requirements.lock)

    path = libusb_package.get_library_path()
    if path is not None:
        ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)


def with_metadata(flatbuffer: bytes, class_names: List[str]) -> bytes:
    """The flatbuffer with image-classifier metadata: the labels file packed in, normalization mean 0 / std 1."""
    import tempfile

    load_libusb()
    try:
        # tflite-support's own modules: `import tflite_support` also loads its Task Library, whose pybind types
        # clash on import ("StatusCode ... already defined") in this environment.
        from tensorflow_lite_support.metadata.python.metadata_writers import image_classifier
    except ImportError as err:
        if "libusb" not in str(err):
            raise
        raise ImportError(f"--tflite: tflite-support's metadata writer needs libusb-1.0 ({err}); install the "
                          "libusb-package wheel (requirements.lock has it) or the system package libusb-1.0-0") from err

    with tempfile.TemporaryDirectory() as scratch:  # the writer reads the labels from a local file
        labels_path = os.path.join(scratch, TFLITE_LABELS)
        with open(labels_path, "w") as f:
            f.write(labels_text(class_names))
        writer = image_classifier.MetadataWriter.create_for_inference(
            flatbuffer, input_norm_mean=[0.0], input_norm_std=[1.0], label_file_paths=[labels_path])
        return writer.populate()


def labels_text(class_names: List[str]) -> str:
    return "".join(f"{name}\n" for name in class_names)


def export(model, class_names: List[str], image_size: int, mode: str, model_uri: str,
           representative=None) -> str:
    """Writes <model_uri>/tflite/{model.tflite, labels.txt, export.json}; returns the folder."""
    start = time.monotonic()
    folder = os.path.join(model_uri, TFLITE_DIR)
    tf.io.gfile.makedirs(folder)
    with tf.io.gfile.GFile(os.path.join(folder, TFLITE_LABELS), "w") as f:
        f.write(labels_text(class_names))
    flatbuffer = with_metadata(convert(model, len(class_names), image_size, mode, representative), class_names)
    with tf.io.gfile.GFile(os.path.join(folder, TFLITE_FILE), "wb") as f:
        f.write(flatbuffer)
    seconds = time.monotonic() - start
    with tf.io.gfile.GFile(os.path.join(folder, TFLITE_EXPORT_INFO), "w") as f:
        json.dump({"mode": mode, "bytes": len(flatbuffer), "seconds": round(seconds, 1),
                   "representative_images": len(representative or [])}, f)
    log.info("TFLite (%s) model: %d bytes, exported in %.1f s", mode, len(flatbuffer), seconds)
    return folder
