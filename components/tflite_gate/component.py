"""TFLiteGate: the Trainer's TFLite model judged on the Evaluator's split against the SavedModel beside it.

TFMA's `model_type='tf_lite'` feeds a TFLite model the transformed features by input name; this model takes
pixels, not the Transform graph's [-1, 1] images, so the project evaluates it itself (executor.py). The
verdict (`passed`, and why) is a TFLiteEvaluation artifact the Pusher reads: a TFLite model that fails is not
pushed, the SavedModel push is unaffected.
"""

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from tfx_image_finetune.components.tflite_gate import executor



class TFLiteEvaluation(types.Artifact):
    """evaluation.json: both models' accuracy on the split, top-1 agreement, sizes, latency, the verdict."""

    TYPE_NAME = "tfx_image_finetune.TFLiteEvaluation"  # KFP v2 wants <namespace>.<name>


class TFLiteGateSpec(types.ComponentSpec):
    PARAMETERS = {
        "split": ExecutionParameter(type=str),
        "max_accuracy_drop": ExecutionParameter(type=float),
        "image_feature": ExecutionParameter(type=str),  # Transform's output names (trainer/transform.py)
        "label_feature": ExecutionParameter(type=str),
    }
    INPUTS = {
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "model": ChannelParameter(type=standard_artifacts.Model),
        "transform_graph": ChannelParameter(type=standard_artifacts.TransformGraph),
    }
    OUTPUTS = {"evaluation": ChannelParameter(type=TFLiteEvaluation)}


class TFLiteGate(base_component.BaseComponent):
    SPEC_CLASS = TFLiteGateSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, examples, model, transform_graph, split: str, max_accuracy_drop: float,
                 image_feature: str, label_feature: str):
        super().__init__(spec=TFLiteGateSpec(
            examples=examples, model=model, transform_graph=transform_graph, split=split,
            max_accuracy_drop=max_accuracy_drop, image_feature=image_feature, label_feature=label_feature,
            evaluation=types.Channel(type=TFLiteEvaluation)))
