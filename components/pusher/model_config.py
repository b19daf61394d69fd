"""The TF Serving model config file the pusher keeps beside the model folder: what makes a push atomic on GCS.

Renaming a folder is atomic on a local file system, but on an object store (gs://) it copies object by object,
so TF Serving polling `--model_base_path` could load a version that is still being copied. A TF Serving started
with `--model_config_file=<serving-dir>/models.config --model_config_file_poll_wait_seconds=N` loads only the
versions this file names (`model_version_policy { specific { versions: ... } }`), and the file is replaced in
one object write, after a version is completely copied and checked; and before old versions are deleted, so
TF Serving unloads them first.
"""

from __future__ import annotations

import os
import uuid
from typing import Iterable, List

from tfx.dsl.io import fileio
from tfx.utils import io_utils

from tfx_image_finetune.serving_contract import versions

CONFIG_FILE = "models.config"


def config_path(base: str) -> str:
    """<serving-dir>/models.config for the model folder <serving-dir>/<model-name>."""
    return os.path.join(os.path.dirname(base.rstrip("/")), CONFIG_FILE)


def _absolute(base: str) -> str:
    """TF Serving requires absolute base paths (or URIs) in the config."""
    base = base.rstrip("/")
    return base if "://" in base else os.path.abspath(base)


def read(path: str):
    """The ModelServerConfig in `path`, or None if there is no such file."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    if not fileio.exists(path):
        return None
    return text_format.Parse(io_utils.read_string_file(path), model_server_config_pb2.ModelServerConfig())


def served_versions(base: str) -> List[int]:
    """The versions the config names for this model; without a config yet, the complete versions on disk."""
    config = read(config_path(base))
    name = os.path.basename(base.rstrip("/"))
    if config is not None:
        for model in config.model_config_list.config:
            if model.name == name:
                return sorted(model.model_version_policy.specific.versions)
    return versions(base)


def publish(base: str, served: Iterable[int]) -> None:
    """Make TF Serving serve exactly `served` of this model; other models in the file are kept as they are.

    Written to a temporary file and renamed over the config: one atomic rename locally, one object copy on
    GCS (a reader gets the old object or the new one, never a part).
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    path = config_path(base)
    config = read(path) or model_server_config_pb2.ModelServerConfig()
    name = os.path.basename(base.rstrip("/"))
    entry = _entry(config, name)
    entry.base_path, entry.model_platform = _absolute(base), "tensorflow"
    entry.model_version_policy.specific.ClearField("versions")
    entry.model_version_policy.specific.versions.extend(sorted(set(served)))
    staging = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    io_utils.write_string_file(staging, text_format.MessageToString(config))
    try:
        fileio.rename(staging, path, overwrite=True)
    finally:
        if fileio.exists(staging):
            fileio.remove(staging)


def _entry(config, name: str):
    for model in config.model_config_list.config:
        if model.name == name:
            return model
    entry = config.model_config_list.config.add()
    entry.name = name
    return entry

