"""TFX's Pusher with this project's file-system executor: the same spec, inputs and outputs, plus an optional
`tflite_evaluation` (components/tflite_gate): with it, a TFLite model that passed goes into the version too."""

from typing import Any, Dict, Optional

from tfx import types
from tfx.components.pusher.component import Pusher as TfxPusher
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.standard_component_specs import PusherSpec
from tfx.utils import json_utils

from tfx_image_finetune.components.pusher import executor
from tfx_image_finetune.components.tflite_gate.component import TFLiteEvaluation


class ServingDirPusherSpec(PusherSpec):
    INPUTS = {**PusherSpec.INPUTS,
              executor.TFLITE_EVALUATION_KEY: ChannelParameter(type=TFLiteEvaluation, optional=True)}


class ServingDirPusher(TfxPusher):
    SPEC_CLASS = ServingDirPusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, model: types.BaseChannel, model_blessing: types.BaseChannel, push_destination,
                 custom_config: Optional[Dict[str, Any]] = None,
                 tflite_evaluation: Optional[types.BaseChannel] = None):
        spec = ServingDirPusherSpec(
            model=model, model_blessing=model_blessing, push_destination=push_destination,
            custom_config=json_utils.dumps(custom_config), tflite_evaluation=tflite_evaluation,
            pushed_model=types.Channel(type=standard_artifacts.PushedModel))
        super(TfxPusher, self).__init__(spec=spec)
