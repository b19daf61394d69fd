"""TFX's Evaluator with this project's executor (same spec, inputs and outputs)."""

from tfx.components.evaluator.component import Evaluator as TfxEvaluator
from tfx.dsl.components.base import executor_spec

from tfx_image_finetune.components.evaluator import executor


class Evaluator(TfxEvaluator):
    """Drops a baseline that solves another task (see executor) before TFMA compares with it."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
