"""TFX's Vertex AI Pusher, deploying only a model that passes the file-system push's servable check.

TFX's executor uploads whatever the Evaluator blessed. This one first loads the model and replays its warmup
requests (`servable_check`), before any Vertex AI call: a model TF Serving could not load or warm up fails
the component instead of reaching an endpoint.
"""

from tfx.dsl.components.base import executor_spec
from tfx.extensions.google_cloud_ai_platform.pusher import component as vertex_component
from tfx.extensions.google_cloud_ai_platform.pusher import executor as vertex_executor

from tfx_image_finetune.components.pusher.servable_check import check_servable


class Executor(vertex_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        if self.CheckBlessing(input_dict):  # unblessed: the parent marks it not pushed, nothing to check
            check_servable(self.GetModelPath(input_dict))
        super().Do(input_dict, output_dict, exec_properties)


class CheckedVertexPusher(vertex_component.Pusher):
    """Same spec, inputs and custom_config as TFX's Vertex Pusher."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
