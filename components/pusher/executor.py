"""Push a blessed model to <base>/<version>/ so that TF Serving never sees a partial or repeated version.

- Atomic: the copy goes to a hidden temporary folder beside the versions and is renamed into place; TF
  Serving's file-system poller only loads all-digit folder names. On an object store the rename copies object
  by object, so `<serving-dir>/models.config` (`model_config`) names the complete versions and is rewritten
  only after the rename (and before old versions are deleted): TF Serving started with that config file loads
  no partial version anywhere.
- Versions are increasing integers (the Unix time, or the last version + 1 if that is not larger).
- Pushes racing on one serving dir (the same or other model names) each get their own version and none drops
  another's from the config: the version is chosen, renamed and published under `model_config.locked` (local
  disk; on gs:// a create-only claim object and a generation-matched config write instead).
- Before the rename the staged model is loaded and its TF Serving warmup requests are replayed through it
  (`servable_check`, as TFX's InfraValidator would): a model that cannot serve is never made visible.
- Only the newest `keep_versions` versions (custom_config) stay; older ones leave the config, then the disk.
- Each Trainer model is pushed once: a rerun whose Evaluator re-blesses the same model (e.g. against itself
  as baseline) points at the version already there instead of copying it again.
"""

import json
import os
import time
from typing import Callable, List, Optional

from absl import logging
from tfx.components.pusher import executor as tfx_pusher_executor
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from tfx_image_finetune.components.pusher import model_config
from tfx_image_finetune.components.pusher.servable_check import check_servable
from tfx_image_finetune.components.pusher.staging import MODEL_PREFIX, name as staging_name
from tfx_image_finetune.components.tflite_gate.executor import PASSED_PROPERTY, REASON_PROPERTY
from tfx_image_finetune.serving_contract import SOURCE_MODEL_FILE, TFLITE_DIR, TFLITE_FILE, TFLITE_LABELS, versions

TFLITE_EVALUATION_KEY = "tflite_evaluation"  # the optional input: TFLiteGate's verdict
TFLITE_PROPERTY = "tflite"  # on the PushedModel: "pushed", or "not pushed: <why>"


def version_of(base: str, source_uri: str) -> Optional[int]:
    """The pushed version made from the Trainer model at `source_uri`, if any; only complete versions count
    (those the model config names: on GCS a push killed mid-rename can leave a partial folder behind)."""
    for version in model_config.served_versions(base):
        marker = os.path.join(base, str(version), SOURCE_MODEL_FILE)
        if fileio.exists(marker) and io_utils.read_string_file(marker).strip() == source_uri:
            return version
    return None


def push_atomically(model_path: str, base: str, source_uri: str,
                    check: Optional[Callable[[str], object]] = None, tflite_dir: Optional[str] = None) -> int:
    """Copy to a staging folder, run `check` on it (raises to refuse), rename it to the next version, and only
    then name it in the model config. The version is chosen, renamed into place and published under the
    serving dir's lock (`model_config.locked`), so two pushes of one model never pick the same number and
    neither drops the other's version from the config."""
    fileio.makedirs(base)
    staging = os.path.join(base, staging_name(MODEL_PREFIX))
    target = None  # set once this push owns a version folder
    try:
        io_utils.copy_dir(model_path, staging)
        io_utils.write_string_file(os.path.join(staging, SOURCE_MODEL_FILE), source_uri)
        if tflite_dir:  # --tflite: <version>/tflite/{model.tflite, labels.txt}, renamed into place with the version
            fileio.makedirs(os.path.join(staging, TFLITE_DIR))
            for name in (TFLITE_FILE, TFLITE_LABELS):
                fileio.copy(os.path.join(tflite_dir, name), os.path.join(staging, TFLITE_DIR, name))
        if check is not None:
            check(staging)
        with model_config.locked(base):
            existing = versions(base)
            version = _claim(base, max(int(time.time()), existing[-1] + 1 if existing else 0))
            target = os.path.join(base, str(version))
            fileio.rename(staging, target)
            model_config.publish(base, lambda served: [*_on_disk(base, served), version])
    except BaseException:
        for partial in (staging, target):  # on an object store a failed rename leaves part of the target
            if partial and fileio.exists(partial):
                fileio.rmtree(partial)
        raise
    return version


def _on_disk(base: str, served: List[int]) -> List[int]:
    """The served versions still on disk (listed when the config is changed: on gs:// that may be a retry)."""
    present = set(versions(base))
    return [v for v in served if v in present]


CLAIMS = ".claims"  # gs:// only: <base>/.claims/<version>, created only if absent, one per pushed version


def _claim(base: str, version: int) -> int:
    """`version`, or the next free one. Locally the caller holds the lock, so the versions on disk are all
    there is; on gs:// a version is taken by creating `<base>/.claims/<version>` with `if_generation_match=0`,
    which exactly one of two racing pushes can do."""
    if not base.startswith("gs://"):
        return version
    from google.api_core import exceptions
    from google.cloud import storage

    bucket_name, _, prefix = base.rstrip("/")[len("gs://"):].partition("/")
    bucket = storage.Client().bucket(bucket_name)
    while True:
        try:
            bucket.blob(f"{prefix}/{CLAIMS}/{version}").upload_from_string(b"", if_generation_match=0)
            return version
        except exceptions.PreconditionFailed:
            version += 1


def prune(base: str, keep: int) -> None:
    """Remove all but the newest `keep` versions (keep <= 0 keeps everything): out of the config first, under
    the serving dir's lock, so a version another push is adding meanwhile is neither dropped nor deleted."""
    if keep <= 0:
        return
    with model_config.locked(base):
        doomed = versions(base)[:-keep]
        if doomed:
            model_config.publish(base, lambda served: [v for v in served if v not in doomed])
        for version in doomed:
            if fileio.exists(os.path.join(base, str(version))):  # gs://: a concurrent prune may have gone first
                fileio.rmtree(os.path.join(base, str(version)))
            claim = os.path.join(base, CLAIMS, str(version))
            if base.startswith("gs://") and fileio.exists(claim):
                fileio.remove(claim)


def tflite_to_push(input_dict, model_uri: str):
    """(the Trainer's tflite/ folder or None, what the PushedModel says about it or ''): only a TFLite model
    that passed TFLiteGate is pushed; the SavedModel is pushed either way."""
    evaluations = input_dict.get(TFLITE_EVALUATION_KEY) or []
    if not evaluations:
        return None, ""
    evaluation = evaluations[0]
    if evaluation.get_int_custom_property(PASSED_PROPERTY) == 1:
        return os.path.join(model_uri, TFLITE_DIR), "pushed"
    reason = evaluation.get_string_custom_property(REASON_PROPERTY)
    logging.warning("Not pushing the TFLite model: %s.", reason)
    return None, f"not pushed: {reason}"


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
            model_config.publish(base, lambda served: [*served, version])
        else:
            custom_config = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or {}
            if isinstance(custom_config, str):  # TFX passes it JSON-encoded
                custom_config = json.loads(custom_config) or {}
            check = check_servable if custom_config.get("check_servable", True) else None
            tflite_dir, tflite_note = tflite_to_push(input_dict, source_uri)
            if tflite_note:
                model_push.set_string_custom_property(TFLITE_PROPERTY, tflite_note)
            version = push_atomically(self.GetModelPath(input_dict), base, source_uri, check, tflite_dir)
            logging.info("Pushed model version %d to %s", version, base)
            prune(base, int(custom_config.get("keep_versions", 0)))
        # Like TFX's Pusher, keep a copy in the PushedModel artifact, so lineage points at the pushed bytes:
        # copied from the model pushed (the version folder adds only its marker), as a concurrent push of a
        # newer version may already have pruned this one (--keep-versions 1).
        io_utils.copy_dir(self.GetModelPath(input_dict), model_push.uri)
        self._MarkPushed(model_push, pushed_destination=os.path.join(base, str(version)), pushed_version=str(version))
