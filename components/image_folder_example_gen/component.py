"""ImageFolderExampleGen: a FileBasedExampleGen for <root>/<class>/<file> image folders.

Being a FileBasedExampleGen keeps TFX's driver (input fingerprints, so a changed folder invalidates the
cache), its split machinery and its output layout; it adds one output, the ingest report that lists every
file it skipped and why.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from tfx import types
from tfx.components.example_gen import driver as example_gen_driver
from tfx.components.example_gen import input_processor
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.types.standard_component_specs import FileBasedExampleGenSpec

from tfx_image_finetune.components.image_folder_example_gen import executor, layout
from tfx_image_finetune.components.image_folder_example_gen.executor import SELECTION_PERCENT_KEY
from tfx_image_finetune.components.ingest_report import MAX_IMAGE_PIXELS_KEY
from tfx_image_finetune.data_contract import FILENAME_FEATURE, INGEST_REPORT_KEY, MAX_IMAGE_PIXELS


class ImageIngestReport(types.Artifact):
    """report.json: valid images per split and class, and every skipped file with the reason."""

    # KFP v2 wants <namespace>.<Name>, and its TFX entrypoint imports that name: tfx_image_finetune/__init__.py.
    TYPE_NAME = "tfx_image_finetune.ImageIngestReport"


class ImageFolderExampleGenSpec(FileBasedExampleGenSpec):
    PARAMETERS = {
        **FileBasedExampleGenSpec.PARAMETERS,
        # Percent of train/ hashed into the selection split when the root has no test/ folder.
        SELECTION_PERCENT_KEY: ExecutionParameter(type=int, optional=True),
        # Images whose header claims more pixels are skipped, with that reason (data.max_image_pixels).
        MAX_IMAGE_PIXELS_KEY: ExecutionParameter(type=int, optional=True),
    }
    OUTPUTS = {
        **FileBasedExampleGenSpec.OUTPUTS,
        INGEST_REPORT_KEY: ChannelParameter(type=ImageIngestReport),
    }


def make_configs(split_folders: Optional[List[str]], split_ratios: Dict[str, int]
                 ) -> Tuple[example_gen_pb2.Input, example_gen_pb2.Output]:
    """Input/output configs: the given split folders (layout.split_folders_of), or a hash split of the root."""
    folders = layout.split_folders_of(split_folders)
    if folders:
        input_config = example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name=name, pattern=f"{folder}/*/*") for name, folder in folders.items()]
        )
        return input_config, example_gen_pb2.Output()
    input_config = example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="all", pattern="*/*")])
    # Deterministic: the same file lands in the same split, whatever else changes in the folder.
    return input_config, hash_split_output(split_ratios, partition_feature_name=FILENAME_FEATURE)


def hash_split_output(split_ratios: Dict[str, int], partition_feature_name: str = "") -> example_gen_pb2.Output:
    """ExampleGen output config that hash-splits into {split: percentage} (zero percentages left out)."""
    split_config = example_gen_pb2.SplitConfig(
        splits=[example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=ratio)
                for name, ratio in split_ratios.items() if ratio > 0])
    if partition_feature_name:  # a oneof: even '' set would make TFX look for a feature of that name
        split_config.partition_feature_name = partition_feature_name
    return example_gen_pb2.Output(split_config=split_config)


class _TreeInputProcessor(input_processor.FileBasedInputProcessor):
    """Fingerprints every file below the root (any depth, links not followed).

    TFX's own fingerprint stats each file its split patterns match: it misses files in sub-folders of a
    class folder (which are ingested), and a broken symbolic link makes its stat fail with an empty
    NotFoundError before the executor can list the link as a skipped file.
    """

    def resolve_span_and_version(self):
        span, version = 0, None
        self._fingerprint = layout.fingerprint(self._input_base_uri)
        return span, version


class ImageFolderDriver(example_gen_driver.FileBasedDriver):
    def get_input_processor(self, splits, range_config=None, input_base_uri=None):
        return _TreeInputProcessor(input_base_uri, splits, range_config)


class ImageFolderExampleGen(FileBasedExampleGen):
    SPEC_CLASS = ImageFolderExampleGenSpec
    DRIVER_CLASS = ImageFolderDriver
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(self, input_base: str, split_folders: Optional[List[str]], split_ratios: Dict[str, int],
                 selection_percent: int, max_image_pixels: int = MAX_IMAGE_PIXELS):
        """`split_folders` (layout.given_split_folders) for a root already split, else None: hash-split by
        `split_ratios` (percent). `selection_percent`: the share of train/ for selection when there is no test/.
        `max_image_pixels`: an image whose header claims more is a listed skip, never decoded."""
        input_config, output_config = make_configs(split_folders, split_ratios)
        spec = ImageFolderExampleGenSpec(
            input_base=input_base,
            input_config=input_config,
            output_config=output_config,
            custom_config=None,
            selection_percent=selection_percent,
            max_image_pixels=max_image_pixels,
            range_config=None,
            output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
            output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
            examples=types.Channel(type=standard_artifacts.Examples),
            ingest_report=types.Channel(type=ImageIngestReport),
        )
        base_beam_component.BaseBeamComponent.__init__(self, spec=spec)
