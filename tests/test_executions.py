"""local/executions.py: what a killed or failed run left RUNNING in MLMD is cancelled and its folders removed,
by TFX's own folder layout and property names (TFX internals: pinned here, so an upgrade that moves them fails
this test instead of leaving partial outputs behind)."""

import os

from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration.portable import outputs_utils

from tfx_image_finetune.config import PipelineConfig
from tfx_image_finetune.local import executions
from tfx_image_finetune.metadata_store import State, store


def _put_trainer_execution(s, state) -> metadata_store_pb2.Execution:
    """A Trainer execution in `state`, in the node context TFX records it under."""
    node_type = s.put_context_type(metadata_store_pb2.ContextType(name="node"))
    exec_type = s.put_execution_type(metadata_store_pb2.ExecutionType(name="tfx.components.Trainer"))
    contexts = s.get_contexts_by_type("node")
    ctx = contexts[0] if contexts else metadata_store_pb2.Context(type_id=node_type, name="tfx-image-finetune.Trainer")
    if not contexts:
        [ctx.id] = s.put_contexts([ctx])
    execution = metadata_store_pb2.Execution(type_id=exec_type, last_known_state=state)
    execution.custom_properties[executions.STATEFUL_WORKING_DIR_INDEX].string_value = f"index-{state}"
    execution.id, _, _ = s.put_execution(execution, [], [ctx])
    return execution


def test_the_tfx_layout_the_clean_up_relies_on_is_the_installed_one():
    system = outputs_utils._SYSTEM  # noqa: SLF001 - the point of this test
    assert executions.EXECUTION_DIRS == (os.path.join(system, outputs_utils._DRIVER_EXECUTION),
                                         os.path.join(system, outputs_utils._EXECUTOR_EXECUTION))
    assert executions.STATEFUL_WORKING_DIR == os.path.join(system, outputs_utils._STATEFUL_WORKING_DIR)
    assert executions.STATEFUL_WORKING_DIR_INDEX == outputs_utils._STATEFUL_WORKING_DIR_INDEX


def test_unfinished_executions_are_cancelled_and_the_folders_tfx_made_for_them_removed(tmp_path):
    cfg = PipelineConfig()
    cfg.runtime.output_dir = str(tmp_path)
    s = store(cfg.metadata_path)
    node_dir = os.path.join(cfg.pipeline_root, "Trainer")
    made = {}
    for state in (State.COMPLETE, State.RUNNING):
        execution = _put_trainer_execution(s, state)
        model = os.path.join(node_dir, "model", str(execution.id))
        os.makedirs(model)
        made[state] = [model, os.path.dirname(outputs_utils.get_executor_output_uri(node_dir, execution.id)),
                       outputs_utils.make_tmp_dir(node_dir, execution.id),  # TFX's own functions make them
                       outputs_utils.get_stateful_working_directory(node_dir, execution)]
    assert all(os.path.isdir(path) for paths in made.values() for path in paths)

    assert executions.unfinished_and_failed(cfg.metadata_path) == ([("Trainer", 2)], None)
    assert executions.cancel_unfinished(cfg.metadata_path, cfg.pipeline_root, after_id=0) == ["Trainer"]
    assert [e.last_known_state for e in s.get_executions()] == [State.COMPLETE, State.CANCELED]
    assert not [path for path in made[State.RUNNING] if os.path.exists(path)]
    assert all(os.path.isdir(path) for path in made[State.COMPLETE])  # what finished is kept
    assert executions.unfinished_and_failed(cfg.metadata_path) == ([], "Trainer")
    assert executions.cancel_unfinished(cfg.metadata_path, cfg.pipeline_root) == []
