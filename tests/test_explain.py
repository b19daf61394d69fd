"""Explanations (trainer/explain.py): a heat map points at what decided the class, and its overlay is a PNG."""

import io

import numpy as np
import pytest
from PIL import Image

from tfx_image_finetune.trainer.explain import explain_pixels
from tfx_image_finetune.trainer.keras2 import keras, tf

SIZE, SIDE = 48, 8
COLOURS = {0: (1.0, -1.0, -1.0), 1: (-1.0, 1.0, -1.0)}  # red square: class 0, green square: class 1


def _square_images(n, rng):
    """Grey noise in the network's [-1, 1], one coloured square each (its colour is the class); and the squares."""
    images = rng.normal(0.0, 0.25, (n, SIZE, SIZE, 3)).astype("float32")
    labels, corners = rng.integers(0, 2, n), rng.integers(0, SIZE - SIDE, (n, 2))
    for image, label, (y, x) in zip(images, labels, corners):
        image[y:y + SIDE, x:x + SIDE] = COLOURS[int(label)]
    return np.clip(images, -1, 1), labels, corners


@pytest.fixture(scope="module")
def square_model():
    return trained_square_model()


def trained_square_model():
    """A tiny convolutional network, trained here to tell the square's colour (real Keras)."""
    keras.utils.set_random_seed(0)
    images, labels, _ = _square_images(400, np.random.default_rng(0))
    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)),
                              keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
                              keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
                              keras.layers.GlobalMaxPooling2D(), keras.layers.Dense(2)])
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(images, labels, epochs=15, batch_size=32, verbose=0)
    return lambda pixels: tf.nn.softmax(model(pixels, training=False))


def test_the_heat_map_peaks_on_the_square_that_decides_the_class(square_model):
    images, labels, corners = _square_images(12, np.random.default_rng(1))
    for image, label, (y, x) in zip(images, labels, corners):
        explained = explain_pixels(square_model, image)
        assert explained.class_id == label and explained.probability > 0.9  # the model learnt the task
        peak_y, peak_x = np.unravel_index(np.argmax(explained.heat), explained.heat.shape)
        assert y <= peak_y < y + SIDE and x <= peak_x < x + SIDE, ((peak_y, peak_x), (y, x))
        inside = explained.heat[y:y + SIDE, x:x + SIDE].mean()
        outside = (explained.heat.sum() - explained.heat[y:y + SIDE, x:x + SIDE].sum()) / (SIZE * SIZE - SIDE * SIDE)
        assert inside > 5 * outside, (inside, outside)


def test_the_overlay_is_a_png_of_the_image_with_the_heat_over_it(square_model):
    images, _, corners = _square_images(1, np.random.default_rng(2))
    explained = explain_pixels(square_model, images[0], class_id=1)  # any class can be explained, not only the top
    assert explained.class_id == 1
    overlay = Image.open(io.BytesIO(explained.overlay_png))
    assert overlay.format == "PNG" and overlay.size == (SIZE, SIZE) and overlay.mode == "RGB"
    cold = np.unravel_index(np.argmin(explained.heat), explained.heat.shape)
    original = np.round((images[0][cold] + 1) * 127.5)
    assert np.abs(np.asarray(overlay)[cold].astype(float) - original).max() <= 1  # where nothing mattered: the image
