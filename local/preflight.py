"""Checks that would otherwise fail only after the training: run in `local_runner.plan`, before TF/TFX are
imported (stdlib only), so a wrong --output or --serving-dir costs a second, not a run. (The metadata store's
own check: tfx_image_finetune/metadata_store.py.)"""

from __future__ import annotations

import os
import tempfile

from tfx_image_finetune.config import ConfigError, PipelineConfig


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
