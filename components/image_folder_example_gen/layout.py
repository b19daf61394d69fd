"""How an image-folder root is laid out, and the ExampleGen input/output configs that follow from it.

Import-light (no TFX): the CLI and tests use it too.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
# Folder name of each given split -> TFX split name ("validation" is TFX's "eval").
GIVEN_SPLIT_DIRS = {"train": "train", "validation": "eval", "eval": "eval", "test": "test"}


def _listdir(path: str) -> List[str]:
    import tensorflow as tf  # gfile reads local paths and gs:// alike

    if not tf.io.gfile.isdir(path):
        raise FileNotFoundError(f"image folder {path!r} does not exist or is not a directory")
    return sorted(name.rstrip("/") for name in tf.io.gfile.listdir(path))


def given_splits(root: str) -> Optional[Dict[str, str]]:
    """{tfx split name: folder} when the root is already split (train + validation|eval [+ test]), else None."""
    names = set(_listdir(root))
    if "train" not in names or not ({"validation", "eval"} & names):
        return None
    eval_dir = "validation" if "validation" in names else "eval"
    splits = {"train": "train", "eval": eval_dir}
    if "test" in names:
        splits["test"] = "test"
    return splits


def class_folders(root: str) -> List[str]:
    """The class folders directly below `root` (every sub-folder is a class)."""
    import tensorflow as tf

    return [n for n in _listdir(root) if tf.io.gfile.isdir(os.path.join(root, n))]
