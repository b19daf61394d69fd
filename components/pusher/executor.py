"""Push a blessed model to <base>/<version>/ so that TF Serving never sees a partial or repeated version.

- Atomic: the copy goes to a hidden temporary folder beside the versions and is renamed into place; TF
  Serving's file-system poller only loads all-digit folder names. On an object store the rename copies object
  by object, so `<serving-dir>/models.config` (`model_config`) names the complete versions and is rewritten
  only after the rename (and before old versions are deleted): TF Serving started with that config file loads
  no partial version anywhere.
- Versions are increasing integers (the Unix time, or the last version + 1 if that is not larger).
- Before the rename the staged model is loaded and its TF Serving warmup requests are replayed through it
  (`servable_check`, as TFX's InfraValidator would): a model that cannot serve is never made visible.
- Only the newest `keep_versions` versions (custom_config) stay; older ones leave the config, then the disk.
- Each Trainer model is pushed once: a rerun whose Evaluator re-blesses the same model (e.g. against itself
  as baseline) points at the version already there instead of copying it again.
"""

import json
import os
import time
import uuid
from typing import Callable, Optional

from absl import logging
from tfx.components.pusher import executor as tfx_pusher_executor
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from tfx_image_finetune.components.pusher import model_config
from tfx_image_finetune.components.pusher.servable_check import check_servable
from tfx_image_finetune.serving_contract import SOURCE_MODEL_FILE, versions


def version_of(base: str, source_uri: str) -> Optional[int]:
    """The pushed version made from the Trainer model at `source_uri`, if any; only complete versions count
    (those the model config names: on GCS a push killed mid-rename can leave a partial folder behind)."""
    for version in model_config.served_versions(base):
        marker = os.path.join(base, str(version), SOURCE_MODEL_FILE)
        if fileio.exists(marker) and io_utils.read_string_file(marker).strip() == source_uri:
            return version
    return None


def push_atomically(model_path: str, base: str, source_uri: str,
                    check: Optional[Callable[[str], object]] = None) -> int:
    """Copy to a staging folder, run `check` on it (raises to refuse), rename it to the next version, and only
    then name it in the model config."""
    existing = versions(base)
    served = [v for v in model_config.served_versions(base) if v in existing]
    version = max(int(time.time()), existing[-1] + 1 if existing else 0)
    fileio.makedirs(base)
    staging = os.path.join(base, f".staging-{version}-{uuid.uuid4().hex[:8]}")
    target = os.path.join(base, str(version))
    try:
        io_utils.copy_dir(model_path, staging)
        io_utils.write_string_file(os.path.join(staging, SOURCE_MODEL_FILE), source_uri)
        if check is not None:
            check(staging)
        fileio.rename(staging, target)
    except BaseException:
        for partial in (staging, target):  # on an object store a failed rename leaves part of the target
            if fileio.exists(partial):
                fileio.rmtree(partial)
        raise
    model_config.publish(base, [*served, version])
    return version


def prune(base: str, keep: int) -> None:
    """Remove all but the newest `keep` versions (keep <= 0 keeps everything): out of the config first."""
    if keep > 0:
        doomed = versions(base)[:-keep]
        if doomed:
            model_config.publish(base, [v for v in model_config.served_versions(base) if v not in doomed])
        for version in doomed:
            fileio.rmtree(os.path.join(base, str(version)))


class Executor(tfx_pusher_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        base = destination.filesystem.base_directory
        source_uri = artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_KEY]).uri
        version = version_of(base, source_uri)
        if version is not None:
            logging.info("Model %s is already served as version %d; not pushing it again.", source_uri, version)
            model_config.publish(base, {*model_config.served_versions(base), version})
        else:
            custom_config = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or {}
            if isinstance(custom_config, str):  # TFX passes it JSON-encoded
                custom_config = json.loads(custom_config) or {}
            check = check_servable if custom_config.get("check_servable", True) else None
            version = push_atomically(self.GetModelPath(input_dict), base, source_uri, check)
            logging.info("Pushed model version %d to %s", version, base)
            prune(base, int(custom_config.get("keep_versions", 0)))
        # Like TFX's Pusher, keep a copy in the PushedModel artifact, so lineage points at the pushed bytes.
        io_utils.copy_dir(os.path.join(base, str(version)), model_push.uri)
        self._MarkPushed(model_push, pushed_destination=os.path.join(base, str(version)), pushed_version=str(version))
