"""The Keras transfer-learning guide's recipe as a plain script, for two or more classes: augmentation ->
Rescaling to [-1, 1] -> MobileNetV2(training=False) -> GAP -> Dropout(0.2) -> Dense; the head at Adam 1e-3, then
the whole network at Adam 1e-5, each for a fixed number of epochs, keeping the last weights (no selection).

One decision rule with the pipeline, the top class: for two classes a single logit thresholded at 0 (p >= 0.5,
as the pipeline's BinaryAccuracy on probabilities), else the arg-max of the softmax logits."""

from __future__ import annotations

import time
from typing import Dict, List, Sequence, Tuple


def train(rows: Sequence[Tuple[str, str]], classes: List[str], image_size: int, weights: str, alpha: float,
          head_epochs: int, finetune_epochs: int, batch_size: int = 32, seed: int = 0):
    """(model, seconds) trained on `rows` [(image path, class name)]; the model takes resized 0..255 pixels."""
    from tfx_image_finetune.trainer.keras2 import keras, tf  # tf_keras, with the autograph rule that keeps fit() fast

    keras.utils.set_random_seed(seed)
    start = time.monotonic()
    size = (image_size, image_size)
    binary = len(classes) == 2
    paths = [p for p, _ in rows]
    labels = [classes.index(label) for _, label in rows]
    train_ds = (tf.data.Dataset.from_tensor_slices((paths, labels)).map(lambda p, y: (load(p, size), y),
                                                                        num_parallel_calls=tf.data.AUTOTUNE)
                .cache().shuffle(len(paths), seed=seed).batch(batch_size).prefetch(tf.data.AUTOTUNE))
    base = keras.applications.MobileNetV2(input_shape=size + (3,), alpha=alpha, include_top=False, weights=weights)
    inputs = keras.Input(size + (3,))
    x = keras.layers.RandomFlip("horizontal")(inputs)
    x = keras.layers.RandomRotation(0.1)(x)
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(x)
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    model = keras.Model(inputs, keras.layers.Dense(1 if binary else len(classes))(x))
    if binary:
        loss, metric = keras.losses.BinaryCrossentropy(from_logits=True), keras.metrics.BinaryAccuracy(threshold=0.0)
    else:
        loss, metric = keras.losses.SparseCategoricalCrossentropy(from_logits=True), "sparse_categorical_accuracy"
    for trainable, lr, epochs in ((False, 1e-3, head_epochs), (True, 1e-5, finetune_epochs)):
        if epochs <= 0:
            continue
        base.trainable = trainable
        model.compile(keras.optimizers.Adam(lr), loss, [metric])
        model.fit(train_ds.map(lambda x, y: (x, tf.cast(y, tf.float32) if binary else y)), epochs=epochs, verbose=2)
    return model, time.monotonic() - start


def load(path, size):
    from tfx_image_finetune.trainer.keras2 import tf

    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return tf.image.resize(image, size)  # bilinear, as image_dataset_from_directory


def accuracy(model, rows: Sequence[Tuple[str, str]], classes: List[str], image_size: int) -> float:
    """Top-class accuracy of the recipe's model on `rows`."""
    from tfx_image_finetune.trainer.keras2 import tf

    paths = [p for p, _ in rows]
    ds = tf.data.Dataset.from_tensor_slices(paths).map(lambda p: load(p, (image_size, image_size))).batch(64)
    logits = model.predict(ds, verbose=0)
    predicted = (logits[:, 0] >= 0).astype(int) if len(classes) == 2 else logits.argmax(axis=1)
    return float((predicted == [classes.index(label) for _, label in rows]).mean())


def scores(values: List[float]) -> Dict[str, float]:
    """mean, sample standard deviation, min and max of per-seed figures."""
    import statistics

    return {"mean": round(statistics.fmean(values), 4),
            "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
            "min": round(min(values), 4), "max": round(max(values), 4), "n": len(values)}
