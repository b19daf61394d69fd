"""The Evaluator's baseline must solve the same task: the same class list and the same image size.

The Resolver hands over the latest blessed model. After a change of class list (a new task reusing an output
folder) that model's labels cannot be compared with the new ones: TFMA fails deep in Beam ("label must be
within [0, 1]") and every later run with it. So a baseline with other classes or another input size is
dropped, the run is judged on the value threshold alone, and the blessing says why (`baseline` property).
"""

from __future__ import annotations

from absl import logging
from tfx.components.evaluator import executor as tfx_evaluator_executor
from tfx.types import artifact_utils, standard_component_specs

from tfx_image_finetune.components.evaluator.task import task_of
from tfx_image_finetune.serving_contract import task_mismatch

BASELINE_PROPERTY = "baseline"  # on the ModelBlessing: the baseline's URI, or "none: <why>"


def baseline_mismatch(model_uri: str, baseline_uri: str) -> str:
    """'' when the baseline solves the same task as the model, else why not."""
    return task_mismatch(task_of(model_uri), task_of(baseline_uri))


class Executor(tfx_evaluator_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        key = standard_component_specs.BASELINE_MODEL_KEY
        baselines = input_dict.get(key) or []
        if baselines:
            model = artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_KEY])
            why = baseline_mismatch(model.uri, baselines[0].uri)
            note = f"none: {why}; judged on the value threshold alone" if why else baselines[0].uri
            if why:
                logging.warning("Not comparing with the last blessed model: %s.", why)
                input_dict = {**input_dict, key: []}
        else:
            note = "none: no blessed model of this task (class list, image size, features) yet; judged on the value threshold alone"
        super().Do(input_dict, output_dict, exec_properties)
        blessing = artifact_utils.get_single_instance(output_dict[standard_component_specs.BLESSING_KEY])
        blessing.set_string_custom_property(BASELINE_PROPERTY, note)
