"""--warm-start: begin from the latest blessed model's weights when it solves the same task with the same network.

Same task: serving_contract.Task (class list, image size, features), judged as the Evaluator judges its
baseline; same network: backbone and width (alpha). The Trainer's `base_model` input (the LatestBlessedModel
resolver's model) is an exported SavedModel whose ServingModule holds the Keras model as `.model`; a
`tf.train.Checkpoint(model=...)` over a freshly built model of that task and network restores exactly those
variables. Anything else (another task or network, no blessed model yet) starts from the pretrained backbone,
and says why.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

from tfx_image_finetune.config import ModelConfig
from tfx_image_finetune.serving_contract import Task, exported_task, task_mismatch

NETWORK = ("backbone", "alpha")  # ModelConfig fields that shape the variables beyond the task


def mismatch(base_model: Optional[str], classes: List[str], model_cfg: ModelConfig,
             features: Optional[Tuple[str, str]] = None) -> str:
    """'' when the base model can seed this one, else why not (`features`: this run's (image, label) keys;
    None: not checked)."""
    if not base_model:
        return "no blessed model of this task yet"
    base_classes, config = exported_task(base_model)
    why = task_mismatch(Task(classes, model_cfg.input_size, features), Task.of_config(base_classes, config),
                        "this run")
    if why:
        return why
    base = config.get("model", {})
    for key in NETWORK:
        if base.get(key) != getattr(model_cfg, key):
            return f"the latest blessed model has {key} {base.get(key)!r}, this run {getattr(model_cfg, key)!r}"
    return ""


def restore(model, base_model: str) -> None:
    """The base model's Keras weights into `model` (every variable of `model` must be matched)."""
    import tensorflow as tf

    status = tf.train.Checkpoint(model=model).read(os.path.join(base_model, "variables", "variables"))
    status.expect_partial()  # the SavedModel also holds the Transform layer's and the signatures' objects
    status.assert_existing_objects_matched()


def apply(model, base_model: Optional[str], classes: List[str], model_cfg: ModelConfig,
          features: Optional[Tuple[str, str]] = None) -> Dict[str, Any]:
    """Restore if the base model fits; returns what history.json and the report show."""
    why = mismatch(base_model, classes, model_cfg, features)
    if why:
        return {"used": False, "from": base_model, "note": f"from the pretrained backbone ({why})"}
    restore(model, base_model)
    return {"used": True, "from": base_model, "note": f"warm start from the latest blessed model {base_model}"}
