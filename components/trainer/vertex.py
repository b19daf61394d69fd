"""The Trainer as a Vertex AI Training job: TFX's Vertex executor starts the job (one per worker pool replica,
each running TFX's GenericExecutor), with the examples per class already in custom_config (executor.py).

Apart from component.py because TFX's Vertex modules import the Google Cloud SDK (slow, and it warns)."""

from tfx.dsl.components.base import executor_spec
from tfx.extensions.google_cloud_ai_platform.trainer import executor as vertex_executor

from tfx_image_finetune.components.trainer.component import Trainer
from tfx_image_finetune.components.trainer.executor import CountsFromIngestReport


class VertexExecutor(CountsFromIngestReport, vertex_executor.GenericExecutor):
    pass


class VertexTrainer(Trainer):
    """Same spec as Trainer; give it the id "Trainer" (`with_id`), as TFX's own Vertex Trainer has."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(VertexExecutor)
