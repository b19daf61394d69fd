"""The TF Serving model config file the pusher keeps beside the model folder: what makes a push atomic on GCS.

Renaming a folder is atomic on a local file system, but on an object store (gs://) it copies object by object,
so TF Serving polling `--model_base_path` could load a version that is still being copied. A TF Serving started
with `--model_config_file=<serving-dir>/models.config --model_config_file_poll_wait_seconds=N` loads only the
versions this file names (`model_version_policy { specific { versions: ... } }`), and the file is replaced in
one object write, after a version is completely copied and checked; and before old versions are deleted, so
TF Serving unloads them first.

Several pipelines may push to one serving dir at once (other model names, or the same one), and each update is
a read-modify-write of the one shared file, so it must not lose another writer's entry:
- local disk: an exclusive `flock` on `<serving-dir>/.models.config.lock` held across the read-modify-write
  (`locked`; the executor also holds it while it picks a version number and renames the version into place);
- gs://: no lock exists, so the write is conditional on the object's generation read with it
  (`if_generation_match`) and the change is re-applied to the newer file when another writer came first.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from typing import Callable, Iterable, Iterator, List, Optional, Tuple

from tfx.dsl.io import fileio
from tfx.utils import io_utils

from tfx_image_finetune.components.pusher.staging import CONFIG_PREFIX, name as staging_name
from tfx_image_finetune.serving_contract import versions

CONFIG_FILE = "models.config"
LOCK_FILE = ".models.config.lock"
GCS_ATTEMPTS = 20  # conditional writes tried before giving up (each conflict means another writer succeeded)


class ConcurrentUpdateError(RuntimeError):
    """The config kept changing under a conditional write (gs://)."""


def config_path(base: str) -> str:
    """<serving-dir>/models.config for the model folder <serving-dir>/<model-name>."""
    return os.path.join(os.path.dirname(base.rstrip("/")), CONFIG_FILE)


def _absolute(base: str) -> str:
    """TF Serving requires absolute base paths (or URIs) in the config."""
    base = base.rstrip("/")
    return base if "://" in base else os.path.abspath(base)


def _name(base: str) -> str:
    return os.path.basename(base.rstrip("/"))


def _parse(text: Optional[str]):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    return text_format.Parse(text, config) if text else config


def read(path: str):
    """The ModelServerConfig in `path`, or None if there is no such file."""
    if not fileio.exists(path):
        return None
    return _parse(io_utils.read_string_file(path))


def _served_in(config, base: str) -> List[int]:
    if config is not None:
        for model in config.model_config_list.config:
            if model.name == _name(base):
                return sorted(model.model_version_policy.specific.versions)
    return versions(base)


def served_versions(base: str) -> List[int]:
    """The versions the config names for this model; without a config yet, the complete versions on disk."""
    return _served_in(read(config_path(base)), base)


_held = threading.local()  # lock files this thread holds: `locked` inside `locked` is a no-op, not a deadlock


@contextlib.contextmanager
def locked(base: str) -> Iterator[None]:
    """Exclusive use of the serving dir's config on a local disk, across processes (and threads): an `flock`
    on `<serving-dir>/.models.config.lock`, released by the kernel however the holder ends. Nothing on a
    remote file system: `publish` writes there with a generation precondition instead."""
    if "://" in base:
        yield
        return
    import fcntl

    folder = os.path.dirname(os.path.abspath(base.rstrip("/")))
    os.makedirs(folder, exist_ok=True)
    path = os.path.realpath(os.path.join(folder, LOCK_FILE))
    held = _held.__dict__.setdefault("paths", set())
    if path in held:
        yield
        return
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)  # flock needs no write access: any pusher may take it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        held.add(path)
        try:
            yield
        finally:
            held.discard(path)
    finally:
        os.close(fd)  # releases the lock


def publish(base: str, change: Callable[[List[int]], Iterable[int]]) -> List[int]:
    """Make TF Serving serve `change(versions served now)` of this model; other models in the file are kept.
    Returns the versions now served. Safe under concurrent writers (module docstring): `change` sees the
    current file and may run again if another writer changed it first (gs://).

    Locally written to a temporary file and renamed over the config (one atomic rename); on GCS one conditional
    object write (a reader gets the old object or the new one, never a part).
    """
    if base.startswith("gs://"):
        return _publish_gcs(base, change)
    with locked(base):
        path = config_path(base)
        config = read(path)
        served = _updated(config, base, change)
        staging = os.path.join(os.path.dirname(path), staging_name(CONFIG_PREFIX))
        io_utils.write_string_file(staging, _text(config, base, served))
        try:
            fileio.rename(staging, path, overwrite=True)
        finally:
            if fileio.exists(staging):
                fileio.remove(staging)
        return served


def _updated(config, base: str, change: Callable[[List[int]], Iterable[int]]) -> List[int]:
    return sorted(set(change(_served_in(config, base))))


def _text(config, base: str, served: List[int]) -> str:
    from google.protobuf import text_format

    config = config if config is not None else _parse(None)
    entry = _entry(config, _name(base))
    entry.base_path, entry.model_platform = _absolute(base), "tensorflow"
    entry.model_version_policy.specific.ClearField("versions")
    entry.model_version_policy.specific.versions.extend(served)
    return text_format.MessageToString(config)


def _publish_gcs(base: str, change: Callable[[List[int]], Iterable[int]]) -> List[int]:
    """Read the config with its generation, write the changed one only if that generation is still current
    (`if_generation_match`; 0: only if there is no config yet); on a conflict read again and re-apply."""
    from google.api_core import exceptions
    from google.cloud import storage

    bucket_name, _, name = config_path(base)[len("gs://"):].partition("/")
    bucket = storage.Client().bucket(bucket_name)
    for attempt in range(GCS_ATTEMPTS):
        text, generation = _read_generation(bucket, name, exceptions)
        if generation is None:  # changed between the metadata and the content read: another writer
            continue
        config = _parse(text) if generation else None
        served = _updated(config, base, change)
        try:
            bucket.blob(name).upload_from_string(_text(config, base, served), content_type="text/plain",
                                                 if_generation_match=generation)
            return served
        except exceptions.PreconditionFailed:
            time.sleep(min(2.0, 0.05 * 2 ** attempt) * random.random())  # another writer won: back off, retry
    raise ConcurrentUpdateError(f"{config_path(base)} kept changing; gave up after {GCS_ATTEMPTS} attempts")


def _read_generation(bucket, name: str, exceptions) -> Tuple[Optional[str], Optional[int]]:
    """(text, generation) of the config object; ('', 0) when there is none; (None, None) when it changed
    while being read."""
    blob = bucket.get_blob(name)
    if blob is None:
        return "", 0
    try:
        return blob.download_as_text(if_generation_match=blob.generation), blob.generation
    except (exceptions.PreconditionFailed, exceptions.NotFound):
        return None, None


def _entry(config, name: str):
    for model in config.model_config_list.config:
        if model.name == name:
            return model
    entry = config.model_config_list.config.add()
    entry.name = name
    return entry
