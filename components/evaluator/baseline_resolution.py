"""Resolver policy: the latest blessed model *of the same task* (class list, image size, features).

TFX's LatestBlessedModelStrategy returns the latest blessed model of any task, so after a run on other
classes in the same output folder the previous task's model would be lost as a baseline for good. This one
skips blessed models of other tasks. Local runs only: Vertex AI / Kubeflow compile just TFX's own strategies,
and there the Evaluator's executor drops a baseline of another task instead (judging on the threshold alone).
Built on TFX's public ResolverStrategy and the Evaluator's published blessing properties (no private names).
"""

from __future__ import annotations

from typing import Dict, List, Optional

from tfx.components.evaluator import constants as evaluator_constants
from tfx.dsl.components.common.resolver import ResolverStrategy

from tfx_image_finetune.components.evaluator.task import task_of
from tfx_image_finetune.serving_contract import Task, task_mismatch

MODEL, BLESSING = "model", "model_blessing"  # the resolver's channel keys (pipeline.baseline_resolver)


class LatestBlessedModelOfSameTask(ResolverStrategy):
    def __init__(self, image_size: int, image_key: str, label_key: str, classes: Optional[List[str]] = None):
        self._task = Task(classes, image_size, (image_key, label_key))

    def latest_of_same_task(self, input_dict: Dict[str, list]) -> Dict[str, list]:
        """{MODEL: [the latest blessed model of this task] or [], BLESSING: [its blessing] or []}."""
        blessings = {b.get_int_custom_property(evaluator_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY): b
                     for b in input_dict[BLESSING]
                     if b.get_int_custom_property(evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY)
                     == evaluator_constants.BLESSED_VALUE}
        for model in sorted(input_dict[MODEL], key=lambda a: a.id, reverse=True):
            if model.id in blessings and not task_mismatch(self._task, task_of(model.uri)):
                return {MODEL: [model], BLESSING: [blessings[model.id]]}
        return {MODEL: [], BLESSING: []}

    def resolve_artifacts(self, store, input_dict):
        return self.latest_of_same_task(input_dict)
