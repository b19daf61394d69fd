"""Component: int/float execution parameters in, a HyperParameters artifact out."""

from typing import Union

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.orchestration import data_types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.hyperparameters import executor

Int = Union[int, data_types.RuntimeParameter]
Float = Union[float, data_types.RuntimeParameter]


class TrainingHyperparametersSpec(ComponentSpec):
    PARAMETERS = {name: ExecutionParameter(type=kind) for name, kind in executor.HYPERPARAMETERS.items()}
    INPUTS = {}
    OUTPUTS = {"hyperparameters": ChannelParameter(type=standard_artifacts.HyperParameters)}


class TrainingHyperparameters(base_component.BaseComponent):
    SPEC_CLASS = TrainingHyperparametersSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, head_epochs: Int, finetune_epochs: Int, head_learning_rate: Float,
                 finetune_learning_rate: Float):
        super().__init__(spec=TrainingHyperparametersSpec(
            head_epochs=head_epochs,
            finetune_epochs=finetune_epochs,
            head_learning_rate=head_learning_rate,
            finetune_learning_rate=finetune_learning_rate,
            hyperparameters=types.Channel(type=standard_artifacts.HyperParameters),
        ))
