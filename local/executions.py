"""The executions of a local run in its MLMD store: which are unfinished, and cancelling them cleanly.

Light on purpose (ml_metadata only, no TF or TFX): the process that supervises a run reads and cleans MLMD
after the run's own process is gone, without importing what the run imports.

A run's process that is killed (by the supervisor on Ctrl-C / SIGTERM, by the kernel, by `kill -9`) leaves its
in-flight executions RUNNING in MLMD and their partial outputs on disk. `cancel_unfinished` does for them what
TFX's launcher does for an executor that raised: the execution is recorded as ended (CANCELED here) and its
output folders and temporary folder are removed, so the next run resumes from the cached steps before it.
"""

from __future__ import annotations

import glob
import os
import shutil
from typing import List, Optional, Tuple

import ml_metadata as mlmd

from tfx_image_finetune.metadata_store import State, store

UNFINISHED = (State.RUNNING, State.NEW)

# TFX 1.16's local layout (tfx/orchestration/portable/outputs_utils.py), pinned by tests/test_executions.py:
# outputs at <pipeline_root>/<node>/<output key>/<execution id>, the driver's and the executor's temporary
# folders at <pipeline_root>/<node>/.system/{driver,executor}_execution/<execution id>, the stateful working
# folder at <pipeline_root>/<node>/.system/stateful_working_dir/<index>, the index a custom property.
EXECUTION_DIRS = (os.path.join(".system", "driver_execution"), os.path.join(".system", "executor_execution"))
STATEFUL_WORKING_DIR = os.path.join(".system", "stateful_working_dir")
STATEFUL_WORKING_DIR_INDEX = "__stateful_working_dir_index__"


def last_execution_id(metadata_path: str) -> int:
    """The newest execution's id (0 for a new store): what a run started after it is told apart by."""
    if not os.path.exists(metadata_path):
        return 0
    return max((e.id for e in store(metadata_path).get_executions()), default=0)


def _node_of(s: mlmd.MetadataStore, execution) -> str:
    node_type = s.get_context_type("node").id
    for ctx in s.get_contexts_by_execution(execution.id):
        if ctx.type_id == node_type:
            return ctx.name.split(".", 1)[-1]
    return "?"


def unfinished_and_failed(metadata_path: str, after_id: int = 0) -> Tuple[List[Tuple[str, int]], Optional[str]]:
    """([(node, execution id)] of the executions after `after_id` left RUNNING/NEW, the node that failed last)."""
    if not os.path.exists(metadata_path):
        return [], None
    s = store(metadata_path)
    unfinished, failed = [], None
    for execution in sorted(s.get_executions(), key=lambda e: e.id):
        if execution.id <= after_id:
            continue
        if execution.last_known_state in UNFINISHED:
            unfinished.append((_node_of(s, execution), execution.id))
        elif execution.last_known_state in (State.FAILED, State.CANCELED):
            failed = _node_of(s, execution)
    return unfinished, failed


def cancel_unfinished(metadata_path: str, pipeline_root: str, after_id: int = 0) -> List[str]:
    """Marks the RUNNING/NEW executions after `after_id` CANCELED and removes their outputs and temporary
    folders; returns their nodes. Only for a store no live process writes to (the caller holds the output lock
    and the run's process is gone)."""
    unfinished, _ = unfinished_and_failed(metadata_path, after_id)
    if not unfinished:
        return []
    s = store(metadata_path)
    executions = s.get_executions_by_id([execution_id for _, execution_id in unfinished])
    for execution in executions:
        execution.last_known_state = State.CANCELED
    s.put_executions(executions)
    nodes = dict((execution_id, node) for node, execution_id in unfinished)
    for execution in executions:
        node, execution_id = nodes[execution.id], execution.id
        node_dir = os.path.join(pipeline_root, node)
        doomed = glob.glob(os.path.join(node_dir, "*", str(execution_id)))
        doomed += [os.path.join(node_dir, folder, str(execution_id)) for folder in EXECUTION_DIRS]
        if STATEFUL_WORKING_DIR_INDEX in execution.custom_properties:
            index = execution.custom_properties[STATEFUL_WORKING_DIR_INDEX].string_value
            if index:
                doomed.append(os.path.join(node_dir, STATEFUL_WORKING_DIR, index))
        for path in doomed:
            shutil.rmtree(path, ignore_errors=True)
    return [node for node, _ in unfinished]
