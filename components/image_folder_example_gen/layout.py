"""How an image-folder root is laid out, which of its files become examples, and which folders feed which split.

Import-light: local folders are read with `os` (no TensorFlow), remote ones (gs://...) with tf.io.gfile. The
CLI checks the layout with this module before it imports TFX, and the ExampleGen executor and driver list
their files through it, so every file under the root is either ingested or listed as skipped with a reason.

Splits (tfx_image_finetune.config): train fits the model, selection early-stops it and picks its best weights, test
is what the Evaluator blesses on. An unsplit root is hash-split three ways; a root already split into
train/ + validation/ keeps validation/ as test and carves selection out of train/ by hash; with a test/ folder
as well, validation/ is the selection split.
"""

from __future__ import annotations

import os
import posixpath
from typing import Dict, List, Optional, Tuple

from tfx_image_finetune.data_contract import SELECTION_SPLIT, TEST_SPLIT, TRAIN_SPLIT

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
EVAL_FOLDERS = ("validation", "eval")  # either name is accepted for the held-out folder

# Short skip reasons (the report's `kind`; the CLI counts skips by it).
HIDDEN = "hidden file"
OUTSIDE_CLASS = "not in a class folder"
OUTSIDE_SPLIT = "not in a split folder"
BROKEN_LINK = "broken symbolic link"
LINKED_FOLDER = "symbolic link to a folder (not followed)"


class ImageIngestError(ValueError):
    """The image folder cannot make a training set; the message says which folder or class."""


def _remote(path: str) -> bool:
    return "://" in path


def _join(root: str, *parts: str) -> str:
    return posixpath.join(root, *parts) if _remote(root) else os.path.join(root, *parts)


def _isdir(path: str) -> bool:
    if _remote(path):
        import tensorflow as tf

        return tf.io.gfile.isdir(path)
    return os.path.isdir(path)


def _listdir(path: str) -> List[str]:
    if not _isdir(path):
        raise FileNotFoundError(f"image folder {path!r} does not exist or is not a directory")
    if _remote(path):
        import tensorflow as tf  # gfile reads gs:// and other remote file systems

        return sorted(name.rstrip("/") for name in tf.io.gfile.listdir(path))
    return sorted(os.listdir(path))


def is_hidden(name: str) -> bool:
    return name.startswith(".")


def given_split_folders(root: str) -> Optional[List[str]]:
    """[train, validation|eval] or [train, validation|eval, test] when the root is already split, else None."""
    names = set(_listdir(root))
    held_out = [name for name in EVAL_FOLDERS if name in names]
    if "train" not in names or not held_out:
        return None
    return ["train", held_out[0]] + (["test"] if "test" in names else [])


def resolve_split_folders(root: str, setting: Optional[str]) -> Optional[List[str]]:
    """The split folders of an image root from the `data.split_folders` setting ('none' for an unsplit root,
    'train,validation[,test]'; no listing, as a cloud compile needs) or, without one, by looking."""
    if setting == "none":
        return None
    if setting:
        return setting.split(",")
    return given_split_folders(root)


def split_folders_of(folders: Optional[List[str]]) -> Optional[Dict[str, str]]:
    """{example split: folder} for given split folders (train and selection share train/ without a test/)."""
    if not folders:
        return None
    if len(folders) == 2:
        return {TRAIN_SPLIT: folders[0], SELECTION_SPLIT: folders[0], TEST_SPLIT: folders[1]}
    return {TRAIN_SPLIT: folders[0], SELECTION_SPLIT: folders[1], TEST_SPLIT: folders[2]}


def class_folders(root: str) -> List[str]:
    """The class folders directly below `root`: every sub-folder that is not hidden."""
    return [n for n in _listdir(root) if not is_hidden(n) and _isdir(_join(root, n))]


def _is_broken_link(path: str) -> bool:
    return not _remote(path) and os.path.islink(path) and not os.path.exists(path)


def _walk_files(folder: str) -> Tuple[List[str], List[Tuple[str, str]]]:
    """(files, [(path, skip reason)]) anywhere below `folder`; hidden entries and broken links are skips."""
    files: List[str] = []
    skipped: List[Tuple[str, str]] = []
    if _remote(folder):
        import tensorflow as tf

        for dirpath, dirnames, filenames in tf.io.gfile.walk(folder):
            dirnames[:] = [d.rstrip("/") for d in dirnames]
            for d in [d for d in dirnames if is_hidden(d)]:
                skipped.append((_join(dirpath, d), HIDDEN))
            dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
            for name in sorted(filenames):
                (skipped.append((_join(dirpath, name), HIDDEN)) if is_hidden(name)
                 else files.append(_join(dirpath, name)))
        return files, skipped
    for dirpath, dirnames, filenames in os.walk(folder):
        for d in sorted(dirnames):
            path = os.path.join(dirpath, d)
            if is_hidden(d):
                skipped.append((path, HIDDEN))
            elif os.path.islink(path):
                skipped.append((path, LINKED_FOLDER))
        dirnames[:] = sorted(d for d in dirnames if not is_hidden(d) and not os.path.islink(os.path.join(dirpath, d)))
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if is_hidden(name):
                skipped.append((path, HIDDEN))
            elif _is_broken_link(path):
                skipped.append((path, BROKEN_LINK))
            else:
                files.append(path)
    return files, skipped


def scan_split(input_base: str, split_dir: str) -> Tuple[List[str], List[Tuple[str, str]]]:
    """Every file of one split folder ('' for an unsplit root): (files to read, [(path, skip reason)]).

    Files at any depth inside a class folder belong to that class; anything directly in the split folder,
    hidden entries and broken links are skipped with a reason.
    """
    root = _join(input_base, split_dir) if split_dir else input_base
    files: List[str] = []
    skipped: List[Tuple[str, str]] = []
    for name in _listdir(root):
        path = _join(root, name)
        if is_hidden(name):
            skipped.append((path, HIDDEN))
        elif _is_broken_link(path):
            skipped.append((path, BROKEN_LINK))
        elif not _isdir(path):
            skipped.append((path, OUTSIDE_CLASS))
        else:
            class_files, class_skipped = _walk_files(path)
            files += class_files
            skipped += class_skipped
    return files, skipped


def scan_root_extras(input_base: str, split_dirs: List[str]) -> List[Tuple[str, str]]:
    """For an already-split root: what lies beside the split folders (files, other folders), as skips."""
    if not any(split_dirs):
        return []
    out = []
    for name in _listdir(input_base):
        if name in split_dirs:
            continue
        path = _join(input_base, name)
        out.append((path, HIDDEN if is_hidden(name) else BROKEN_LINK if _is_broken_link(path) else OUTSIDE_SPLIT))
    return out


def relative_path(input_base: str, path: str) -> str:
    return path[len(input_base.rstrip("/")) + 1:].replace(os.sep, "/")


def check_layout(input_base: str, split_dirs: List[str]) -> int:
    """Before any reading: the folder exists, has two or more classes, no empty class, same classes per split.
    Returns how many files the class folders hold (images or not: what ExampleGen will read or skip)."""
    class_sets = {}
    count = 0
    for split_dir in split_dirs:
        root = _join(input_base, split_dir) if split_dir else input_base
        classes = class_folders(root)
        if len(classes) < 2:
            raise ImageIngestError(
                f"{root!r} must hold one folder per class (<root>/<class>/<image>); found {len(classes)} "
                f"class folder(s) {classes}"
            )
        for name in classes:
            files, _ = _walk_files(_join(root, name))
            count += len(files)
            if not files:
                raise ImageIngestError(f"class {name!r} is empty: no file in {_join(root, name)!r}")
        class_sets[split_dir or "."] = set(classes)
    reference = class_sets.get("train", next(iter(class_sets.values())))
    for split_dir, classes in class_sets.items():
        if classes != reference:
            raise ImageIngestError(
                f"the class folders differ between splits: {split_dir!r} has {sorted(classes)}, "
                f"train has {sorted(reference)}"
            )
    return count


def split_dirs_of(folders: Optional[List[str]]) -> List[str]:
    """The folders holding class folders: [''] for an unsplit root, else each given split folder once."""
    return list(dict.fromkeys(folders)) if folders else [""]


def fingerprint(input_base: str) -> str:
    """Size and mtime of every entry below the root (links not followed, so a broken link cannot fail it)."""
    count = total = xor = summed = 0
    if _remote(input_base):
        import tensorflow as tf

        entries = [(_join(d, f)) for d, _, fs in tf.io.gfile.walk(input_base) for f in fs]
        stats = [(s.length, int(s.mtime_nsec // 1_000_000_000)) for s in map(tf.io.gfile.stat, entries)]
    else:
        stats = []
        for dirpath, _, filenames in os.walk(input_base):
            for name in filenames:
                st = os.lstat(os.path.join(dirpath, name))
                stats.append((st.st_size, int(st.st_mtime)))
    for size, mtime in stats:
        count, total, xor, summed = count + 1, total + size, xor ^ mtime, summed + mtime
    return f"tree:{input_base},num_files:{count},total_bytes:{total},xor_checksum:{xor},sum_checksum:{summed}"
