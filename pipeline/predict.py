"""`tfx-image-finetune predict --model-dir DIR IMAGE...`: answer from a pushed SavedModel, no server needed."""

from __future__ import annotations

import os
from typing import List, Tuple


def latest_version_dir(model_dir: str) -> str:
    """A version folder itself, or the newest all-digit version below a TF Serving model folder."""
    if os.path.isfile(os.path.join(model_dir, "saved_model.pb")):
        return model_dir
    from components.pusher.executor import versions

    found = versions(model_dir)
    if not found:
        raise FileNotFoundError(f"--model-dir: no SavedModel in {model_dir!r} nor any version folder below it")
    return os.path.join(model_dir, str(found[-1]))


def predict_local(model_dir: str, image_paths: List[str]) -> List[Tuple[str, str, float]]:
    """(file, class, probability) per image, through the model's serving_default signature."""
    import tensorflow as tf

    for path in image_paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no such image file: {path!r}")
    serve = tf.saved_model.load(latest_version_dir(model_dir)).signatures["serving_default"]
    rows = []
    for path in image_paths:
        with open(path, "rb") as f:
            data = f.read()
        try:
            out = serve(image_bytes=tf.constant([data]))
        except tf.errors.InvalidArgumentError as err:
            raise ValueError(f"{path}: not an image the model can decode ({err.message.splitlines()[0]})") from None
        class_id = int(out["class_ids"][0])
        rows.append((path, out["classes"][0].numpy().decode(), float(out["probabilities"][0][class_id])))
    return rows
