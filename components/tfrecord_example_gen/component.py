"""TFRecordExampleGen: ImportExampleGen's job (existing tf.Example TFRecords), plus the ingest report.

An example whose image does not decode is skipped, counted and listed in the report (as an image folder's bad
file is), instead of failing the Trainer's input pipeline later.
"""

from __future__ import annotations

from tfx import types
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.types.standard_component_specs import FileBasedExampleGenSpec

from tfx_image_finetune.components.image_folder_example_gen.component import ImageIngestReport
from tfx_image_finetune.components.ingest_report import MAX_IMAGE_PIXELS_KEY
from tfx_image_finetune.data_contract import INGEST_REPORT_KEY, MAX_IMAGE_PIXELS
from tfx_image_finetune.components.tfrecord_example_gen import executor


class TFRecordExampleGenSpec(FileBasedExampleGenSpec):
    PARAMETERS = {
        **FileBasedExampleGenSpec.PARAMETERS,
        executor.IMAGE_KEY: ExecutionParameter(type=str),
        executor.LABEL_KEY: ExecutionParameter(type=str),
        MAX_IMAGE_PIXELS_KEY: ExecutionParameter(type=int, optional=True),
    }
    OUTPUTS = {
        **FileBasedExampleGenSpec.OUTPUTS,
        INGEST_REPORT_KEY: ChannelParameter(type=ImageIngestReport),
    }


class TFRecordExampleGen(FileBasedExampleGen):
    SPEC_CLASS = TFRecordExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(self, input_base: str, pattern: str, output_config: example_gen_pb2.Output,
                 image_key: str = "image", label_key: str = "label", max_image_pixels: int = MAX_IMAGE_PIXELS):
        spec = TFRecordExampleGenSpec(
            input_base=input_base,
            input_config=example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="all", pattern=pattern)]),
            output_config=output_config,
            custom_config=None,
            range_config=None,
            output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
            output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
            image_key=image_key,
            label_key=label_key,
            max_image_pixels=max_image_pixels,
            examples=types.Channel(type=standard_artifacts.Examples),
            ingest_report=types.Channel(type=ImageIngestReport),
        )
        base_beam_component.BaseBeamComponent.__init__(self, spec=spec)
