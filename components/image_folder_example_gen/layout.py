"""How an image-folder root is laid out, and which folders feed which example split.

Import-light (no TFX): the CLI and tests use it too.

Splits (pipeline.configs): train fits the model, selection early-stops it and picks its best weights, test
is what the Evaluator blesses on. An unsplit root is hash-split three ways; a root already split into
train/ + validation/ keeps validation/ as test and carves selection out of train/ by hash; with a test/ folder
as well, validation/ is the selection split.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional

from pipeline.configs import SELECTION_SPLIT, TEST_SPLIT, TRAIN_SPLIT

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
EVAL_FOLDERS = ("validation", "eval")  # either name is accepted for the held-out folder


def _listdir(path: str) -> List[str]:
    import tensorflow as tf  # gfile reads local paths and gs:// alike

    if not tf.io.gfile.isdir(path):
        raise FileNotFoundError(f"image folder {path!r} does not exist or is not a directory")
    return sorted(name.rstrip("/") for name in tf.io.gfile.listdir(path))


def given_split_folders(root: str) -> Optional[List[str]]:
    """[train, validation|eval] or [train, validation|eval, test] when the root is already split, else None."""
    names = set(_listdir(root))
    held_out = [name for name in EVAL_FOLDERS if name in names]
    if "train" not in names or not held_out:
        return None
    return ["train", held_out[0]] + (["test"] if "test" in names else [])


def split_folders_of(folders: Optional[List[str]]) -> Optional[Dict[str, str]]:
    """{example split: folder} for given split folders (train and selection share train/ without a test/)."""
    if not folders:
        return None
    if len(folders) == 2:
        return {TRAIN_SPLIT: folders[0], SELECTION_SPLIT: folders[0], TEST_SPLIT: folders[1]}
    return {TRAIN_SPLIT: folders[0], SELECTION_SPLIT: folders[1], TEST_SPLIT: folders[2]}


def class_folders(root: str) -> List[str]:
    """The class folders directly below `root` (every sub-folder is a class)."""
    import tensorflow as tf

    return [n for n in _listdir(root) if tf.io.gfile.isdir(os.path.join(root, n))]
