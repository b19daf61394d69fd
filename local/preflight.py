"""Checks that would otherwise fail only after the training: run in `local_runner.plan`, before TF/TFX are
imported (stdlib only), so a wrong --output or --serving-dir costs a second, not a run. (The metadata store's
own check: tfx_image_finetune/metadata_store.py.)"""

from __future__ import annotations

import os
import tempfile

from tfx_image_finetune.config import WEIGHTS_KEYWORDS, ConfigError, PipelineConfig


def make_output_dir(cfg: PipelineConfig) -> None:
    """The --output folder, created first (the run's lock lives in it): a path under a file or without write
    permission is a flag error naming it, not a traceback."""
    try:
        os.makedirs(cfg.runtime.output_dir, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"runtime.output_dir (--output) {cfg.runtime.output_dir!r} cannot be created: "
                          f"{err.strerror or err}") from None


def check_serving_dir(cfg: PipelineConfig) -> None:
    """The Pusher will create <serving-dir>/<model-name>/ and write versions, models.config and its lock there:
    create and remove a probe file in the deepest of those folders that exists now (the rest it creates).
    Remote URIs (gs://) are left to the Pusher: checking them here would need their client and credentials."""
    target = cfg.serving_model_dir
    if "://" in target:
        return
    flag = "serving.serving_dir (--serving-dir)"
    given = cfg.serving.serving_dir
    shown = repr(given) if given else f"{os.path.dirname(target)!r} (the default, <output>/serving)"
    target = os.path.abspath(target)
    existing = target
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        what = "a broken link" if os.path.islink(existing) else "a file"
        raise ConfigError(f"{flag} {shown} cannot be created: {existing!r} is {what}, not a folder")
    folders = [existing] if existing != target else [os.path.dirname(target), target]  # models.config, versions
    for folder in folders:
        try:
            fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=folder)
            os.close(fd)
            os.remove(probe)
        except OSError as err:
            raise ConfigError(f"{flag} {shown} cannot be written: no file can be created in {folder!r} "
                              f"({err.strerror or err}); give a folder this user can write") from None


def check_local_paths(cfg: PipelineConfig) -> None:
    """The data folder and a --weights file exist here (remote URIs are the components' to read); a weights file
    is a Keras HDF5 weights file (its header and layer list, read with h5py: no TF)."""
    d, weights = cfg.data, cfg.model.weights
    if d.path and d.source == "image_folder" and "://" not in d.path and not os.path.isdir(d.path):
        raise ConfigError(f"data.path {d.path!r} is not a directory")
    if weights in WEIGHTS_KEYWORDS or "://" in weights:
        return
    field_name = "model.weights (--weights)"
    if not os.path.isfile(weights):
        raise ConfigError(f"model.weights must be 'imagenet', 'none' or an existing weights file, got {weights!r}")
    import h5py

    try:
        with h5py.File(weights, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            layer_names = group.attrs.get("layer_names")
    except OSError as err:
        raise ConfigError(f"{field_name} {weights!r} is not a Keras weights file (HDF5 .h5): {err}") from None
    if layer_names is None or len(layer_names) == 0:
        raise ConfigError(f"{field_name} {weights!r} is an HDF5 file but not Keras weights (no 'layer_names' attribute)")
