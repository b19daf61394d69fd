"""The task (serving_contract.Task) of a Trainer model artifact, read from the files the Trainer exports.

A model can only be the Evaluator's baseline for a model of the same task (see executor.py and
baseline_resolution.py); assets.extra/ tells it for any model artifact.
"""

from __future__ import annotations

from tfx.utils import path_utils

from tfx_image_finetune.serving_contract import Task, exported_task


def task_of(model_uri: str) -> Task:
    return Task.of_config(*exported_task(path_utils.serving_model_path(model_uri)))
