"""TFX's Pusher with this project's file-system executor (same spec, inputs and outputs)."""

from tfx.components.pusher.component import Pusher as TfxPusher
from tfx.dsl.components.base import executor_spec

from tfx_image_finetune.components.pusher import executor


class ServingDirPusher(TfxPusher):
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)
