"""Phase 1 on cached features: the frozen base's pooled outputs, computed once instead of every epoch.

In phase 1 the base is frozen and called with training=False, so for a given input image its output never
changes. The head (Dropout -> Dense) is therefore trained on the pooled base outputs of `views` augmented
views of each training image (random flip/rotation drawn once per view, from the model's seeded
augmentation layers) and of the selection images without augmentation. This trades per-epoch augmentation
(a fresh random view every epoch) for a fixed set of views; phase 2 trains on images as before.
The head layers are the model's own, so training the head trains the model.
"""

from __future__ import annotations

import logging
from typing import Optional, Tuple

import numpy as np
from tfx_image_finetune.trainer.keras2 import keras, tf

log = logging.getLogger(__name__)

POOL_LAYER, DROPOUT_LAYER, LOGITS_LAYER = "avg_pool", "dropout", "logits"  # trainer.model.build_model's names
# Default bound; the Trainer passes what its memory budget (training.cache_budget_mb) leaves after the images.
MAX_FEATURE_BYTES = 2 * 1024 ** 3  # above this the cache is not built: phase 1 trains on images


def head_model(model: keras.Model) -> keras.Model:
    """The model's Dropout -> Dense head as a model of its own, on pooled features (shared weights)."""
    inputs = keras.Input(shape=model.get_layer(POOL_LAYER).output.shape[1:], name="pooled_features")
    outputs = model.get_layer(LOGITS_LAYER)(model.get_layer(DROPOUT_LAYER)(inputs))
    return keras.Model(inputs, outputs, name="head")


def pooled_features(model: keras.Model, ds: tf.data.Dataset, views: int, augment: bool,
                    max_bytes: int = MAX_FEATURE_BYTES) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """(features [views * examples, D], labels) of `ds`'s (image, label) batches; None past `max_bytes`."""
    extractor = keras.Model(model.input, model.get_layer(POOL_LAYER).output)
    extract = tf.function(lambda images: extractor(images, training=augment))  # augmentation only if asked
    features, labels, size = [], [], 0
    for _ in range(views):
        for images, batch_labels in ds:
            features.append(extract(images).numpy())
            labels.append(batch_labels.numpy())
            size += features[-1].nbytes
            if size > max_bytes:
                log.warning("phase 1 features would exceed %d MiB; training phase 1 on images instead",
                            max_bytes // 2 ** 20)
                return None
    return np.concatenate(features), np.concatenate(labels)


def cached_phase_one(model: keras.Model, train_ds: tf.data.Dataset, eval_ds: tf.data.Dataset, views: int,
                     batch_size: int, seed: int, max_bytes: Optional[int] = None):
    """(head model, train features dataset, selection features dataset, (train, selection) feature arrays), or
    None when they would not fit."""
    max_bytes = MAX_FEATURE_BYTES if max_bytes is None else max_bytes
    train = pooled_features(model, train_ds, views, augment=True, max_bytes=max_bytes)
    selection = pooled_features(model, eval_ds, 1, augment=False, max_bytes=max_bytes) if train else None
    if selection is None:
        return None
    log.info("phase 1 on cached features: %d training views (%d per image), %d selection examples",
             len(train[0]), views, len(selection[0]))
    train_features = (tf.data.Dataset.from_tensor_slices(train).shuffle(len(train[0]), seed=seed)
                      .batch(batch_size).prefetch(tf.data.AUTOTUNE))
    return (head_model(model), train_features, tf.data.Dataset.from_tensor_slices(selection).batch(batch_size),
            (train, selection))
