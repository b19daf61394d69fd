"""One training worker for tests/test_multi_worker.py: the project's run_fn with TFX's FnArgs, as TFX's Trainer
executor calls it on every replica of a Vertex AI Training job (TF_CONFIG comes from the environment)."""

import json
import logging
import sys

from absl import logging as absl_logging

from tfx.components.trainer.fn_args_utils import FnArgs

from tfx_image_finetune.trainer.task import run_fn

if __name__ == "__main__":
    absl_logging.set_verbosity(absl_logging.INFO)  # as TFX's executor logs: the Trainer's lines, the digest
    logging.getLogger().setLevel(logging.INFO)
    args = json.loads(sys.argv[1])
    run_fn(FnArgs(train_files=args["train_files"], eval_files=args["eval_files"],
                  transform_output=args["transform_output"], transform_graph_path=args["transform_output"],
                  serving_model_dir=args["serving_model_dir"], model_run_dir=args["model_run_dir"],
                  custom_config=args["custom_config"], hyperparameters=None, base_model=None))
