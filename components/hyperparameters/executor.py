"""Write the parameters as the JSON file the Trainer's executor loads into `fn_args.hyperparameters`."""

import json
import os
from typing import Any, Dict

import tensorflow as tf
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

HYPERPARAMETERS = {
    "head_epochs": int,
    "finetune_epochs": int,
    "head_learning_rate": float,
    "finetune_learning_rate": float,
}
FILE_NAME = "hyperparameters.json"


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties: Dict[str, Any]) -> None:
        values = {name: kind(exec_properties[name]) for name, kind in HYPERPARAMETERS.items()}
        for name, value in values.items():
            if value < 0 or (name.endswith("learning_rate") and value == 0) or (name == "head_epochs" and value < 1):
                raise ValueError(f"pipeline parameter {name} has an unusable value {value}")
        uri = artifact_utils.get_single_uri(output_dict["hyperparameters"])
        tf.io.gfile.makedirs(uri)  # LocalDagRunner creates it; the KFP v2 entrypoint does not
        with tf.io.gfile.GFile(os.path.join(uri, FILE_NAME), "w") as f:
            json.dump(values, f)
