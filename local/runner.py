"""Run the pipeline locally: LocalDagRunner, SQLite metadata under the output folder, Beam on this machine."""

from __future__ import annotations

import logging
import os
from typing import List, Optional

from tfx_image_finetune.config import PipelineConfig
from tfx_image_finetune.pipeline.beam_args import local_beam_args, running_mode
from tfx_image_finetune.pipeline.data_layout import DataLayout
from tfx_image_finetune.local.output_lock import output_lock

log = logging.getLogger(__name__)


def beam_args(cfg: PipelineConfig, layout: DataLayout) -> List[str]:
    mode = running_mode(cfg.runtime.direct_running_mode, layout.local_files)
    workers = 1 if mode == "in_memory" else cfg.runtime.direct_num_workers or os.cpu_count() or 1
    return local_beam_args(mode, workers)


def plan(cfg: PipelineConfig) -> DataLayout:
    """Before TF or TFX is imported: the config (validated once, here), the metadata store and the serving dir
    (local/preflight.py), the demo images, the data layout."""
    from tfx_image_finetune.local import preflight
    from tfx_image_finetune.metadata_store import check_metadata

    cfg.validate()
    preflight.check_local_paths(cfg)
    check_metadata(cfg.metadata_path)
    preflight.check_serving_dir(cfg)
    if cfg.data.path is None:
        from tfx_image_finetune.local import demo_data

        demo_data.generate(cfg.demo_data_dir)
        log.info("using the generated demo images in %s", cfg.demo_data_dir)
    return DataLayout.resolve(cfg, check=True)


def check_weights(cfg: PipelineConfig) -> PipelineConfig:
    """ImageNet weights fetched (and cached) now, or a clear failure naming --weights PATH (the demo may fall
    back to random init); a --weights file loaded into the backbone now, so a mismatch fails before the run."""
    weights = cfg.model.weights
    if weights == "imagenet" or (weights != "none" and "://" not in weights):
        from tfx_image_finetune.trainer.model import resolve_weights

        if resolve_weights(cfg.model) is None:
            cfg.model.weights = "none"
        elif weights != "imagenet":
            from tfx_image_finetune.trainer.model import build_checked

            build_checked(cfg.model, weights)
    return cfg


def run(cfg: PipelineConfig, layout: Optional[DataLayout] = None) -> Optional[str]:
    """Run the pipeline; returns the run report's path (None if it could not be written)."""
    with output_lock(cfg.runtime.output_dir):  # before the slow imports: a second run is refused at once
        layout = layout or plan(cfg)
        from tfx.orchestration import metadata
        from tfx.orchestration.local.local_dag_runner import LocalDagRunner

        from tfx_image_finetune.pipeline.pipeline import create_pipeline

        check_weights(cfg)
        pipeline = create_pipeline(
            cfg,
            beam_pipeline_args=beam_args(cfg, layout),
            metadata_connection_config=metadata.sqlite_metadata_connection_config(cfg.metadata_path),
            layout=layout,
        )
        from tfx_image_finetune.local import console

        console.expect_components(len(pipeline.components))  # "[ 3/11] StatisticsGen ..."
        LocalDagRunner().run(pipeline)
        return write_report(cfg)


def write_report(cfg: PipelineConfig):
    """The run report (report/run_report.py); a report that cannot be written is a warning, not a failed run."""
    from tfx_image_finetune.report import run_report as report

    try:
        path = report.write(cfg.runtime.output_dir, cfg.data.drift_threshold, cfg.data.drift_comparator)
    except Exception:  # the run itself succeeded: say why there is no report and carry on
        log.warning("could not write the run report", exc_info=True)
        return None
    log.info("run report: %s", path)
    return path
