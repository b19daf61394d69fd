"""--warm-start: begin from the latest blessed model's weights when it solves the same task with the same network.

The Trainer's `base_model` input (the LatestBlessedModel resolver's model) is an exported SavedModel whose
ServingModule holds the Keras model as `.model`; a `tf.train.Checkpoint(model=...)` over a freshly built model
of the same backbone, width, image size and class list restores exactly those variables. Anything else
(another class list, backbone or size, no blessed model yet) starts from the pretrained backbone, and says why.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

from tfx_image_finetune.config import ModelConfig
from tfx_image_finetune.serving_contract import exported_task


def mismatch(base_model: Optional[str], classes: List[str], model_cfg: ModelConfig) -> str:
    """'' when the base model can seed this one, else why not."""
    if not base_model:
        return "no blessed model of this task yet"
    base_classes, config = exported_task(base_model)
    if base_classes != classes:
        return f"the latest blessed model has classes {base_classes}, this run {classes}"
    image_size = model_cfg.input_size
    if config.get("image_size") != image_size:
        return f"the latest blessed model takes {config.get('image_size')} px images, this run {image_size} px"
    base = config.get("model", {})
    for key in ("backbone", "alpha"):
        if base.get(key) != getattr(model_cfg, key):
            return f"the latest blessed model has {key} {base.get(key)!r}, this run {getattr(model_cfg, key)!r}"
    return ""


def restore(model, base_model: str) -> None:
    """The base model's Keras weights into `model` (every variable of `model` must be matched)."""
    import tensorflow as tf

    status = tf.train.Checkpoint(model=model).read(os.path.join(base_model, "variables", "variables"))
    status.expect_partial()  # the SavedModel also holds the Transform layer's and the signatures' objects
    status.assert_existing_objects_matched()


def apply(model, base_model: Optional[str], classes: List[str], model_cfg: ModelConfig) -> Dict[str, Any]:
    """Restore if the base model fits; returns what history.json and the report show."""
    why = mismatch(base_model, classes, model_cfg)
    if why:
        return {"used": False, "from": base_model, "note": f"from the pretrained backbone ({why})"}
    restore(model, base_model)
    return {"used": True, "from": base_model, "note": f"warm start from the latest blessed model {base_model}"}
