"""Resolver policy: the latest blessed model *of the same task* (class list, image size, features).

TFX's LatestBlessedModelStrategy returns the latest blessed model of any task, so after a run on other
classes in the same output folder the previous task's model would be lost as a baseline for good. This one
skips blessed models of other tasks. Local runs only: Vertex AI / Kubeflow compile just TFX's own strategies,
and there the Evaluator's executor drops a baseline of another task instead (judging on the threshold alone).
"""

from __future__ import annotations

from typing import List, Optional

from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    _BLESSED, _CURRENT_MODEL_ID, LatestBlessedModelStrategy)

from tfx_image_finetune.components.evaluator.task import task_of
from tfx_image_finetune.serving_contract import Task, task_mismatch


class LatestBlessedModelOfSameTask(LatestBlessedModelStrategy):
    def __init__(self, image_size: int, image_key: str, label_key: str, classes: Optional[List[str]] = None):
        super().__init__()
        self._task = Task(classes, image_size, (image_key, label_key))

    def _resolve(self, input_dict, model_channel_key, model_blessing_channel_key):
        blessings = {b.get_int_custom_property(_CURRENT_MODEL_ID): b for b in input_dict[model_blessing_channel_key]
                     if b.get_int_custom_property(_BLESSED) == 1}
        for model in sorted(input_dict[model_channel_key], key=lambda a: a.id, reverse=True):
            if model.id in blessings and not task_mismatch(self._task, task_of(model.uri)):
                return {model_channel_key: [model], model_blessing_channel_key: [blessings[model.id]]}
        return {model_channel_key: [], model_blessing_channel_key: []}
