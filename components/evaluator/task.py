"""What task a Trainer model solves: its class list (id order), input image size and the features it reads.

A model can only be the Evaluator's baseline for a model of the same task (see executor.py and
baseline_strategy.py). Read from the files the Trainer exports (assets.extra/), so any model artifact tells.
"""

from __future__ import annotations

from typing import List, NamedTuple, Optional, Tuple

from tfx.utils import path_utils

from tfx_image_finetune.serving_contract import exported_task


class Task(NamedTuple):
    classes: Optional[List[str]]  # None: not known (e.g. compiled without listing the data); any matches
    image_size: Optional[int]
    features: Tuple[Optional[str], Optional[str]]  # (image key, label key)


def task_of(model_uri: str) -> Task:
    classes, config = exported_task(path_utils.serving_model_path(model_uri))
    data = config.get("data", {})
    return Task(classes, config.get("image_size"), (data.get("image_key"), data.get("label_key")))


def task_mismatch(model: Task, baseline: Task) -> str:
    """'' when `baseline` solves the same task as `model`, else why not."""
    if model.classes is not None and model.classes != baseline.classes:
        return f"the latest blessed model has classes {baseline.classes}, this model {model.classes}"
    if model.image_size != baseline.image_size:
        return f"the latest blessed model takes {baseline.image_size} px images, this model {model.image_size} px"
    if model.features != baseline.features:  # its transform_features would parse other features of the examples
        return f"the latest blessed model reads features {list(baseline.features)}, this model {list(model.features)}"
    return ""
