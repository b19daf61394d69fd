"""Trainer: TFX's Trainer whose spec also takes the ExampleGen's ingest report (executor.py says why); vertex.py
runs it as a Vertex AI Training job."""

from typing import Any, Dict, Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import trainer_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import json_utils

from tfx_image_finetune.components.image_folder_example_gen.component import ImageIngestReport
from tfx_image_finetune.components.trainer import executor
from tfx_image_finetune.data_contract import INGEST_REPORT_KEY


class TrainerSpec(standard_component_specs.TrainerSpec):
    INPUTS = {**standard_component_specs.TrainerSpec.INPUTS,
              INGEST_REPORT_KEY: ChannelParameter(type=ImageIngestReport, optional=True)}


class Trainer(base_component.BaseComponent):
    SPEC_CLASS = TrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, examples: types.BaseChannel, transform_graph: types.BaseChannel, run_fn: str,
                 train_args: trainer_pb2.TrainArgs, eval_args: trainer_pb2.EvalArgs, custom_config: Dict[str, Any],
                 ingest_report: Optional[types.BaseChannel] = None, schema: Optional[types.BaseChannel] = None,
                 base_model: Optional[types.BaseChannel] = None,
                 hyperparameters: Optional[types.BaseChannel] = None):
        super().__init__(spec=TrainerSpec(
            examples=examples, transform_graph=transform_graph, schema=schema, base_model=base_model,
            hyperparameters=hyperparameters, ingest_report=ingest_report, run_fn=run_fn, train_args=train_args,
            eval_args=eval_args, custom_config=json_utils.dumps(custom_config),
            model=types.Channel(type=standard_artifacts.Model),
            model_run=types.Channel(type=standard_artifacts.ModelRun)))
