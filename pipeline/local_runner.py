"""Run the pipeline locally: LocalDagRunner, SQLite metadata under the output folder, Beam DirectRunner."""

from __future__ import annotations

import logging
import os
from typing import List, Optional

from pipeline.beam_args import local_beam_args
from pipeline.configs import PipelineConfig
from pipeline.output_lock import output_lock

log = logging.getLogger(__name__)


def beam_args(cfg: PipelineConfig) -> List[str]:
    workers = cfg.runtime.direct_num_workers or os.cpu_count() or 1
    return local_beam_args(cfg.runtime.direct_running_mode, workers)


def prepare(cfg: PipelineConfig) -> PipelineConfig:
    """Checks that belong before a long run: config values, demo data, ImageNet weights."""
    cfg.validate()
    if cfg.data.path is None:
        from pipeline import demo_data

        demo_data.generate(cfg.demo_data_dir)
        log.info("using the generated demo images in %s", cfg.demo_data_dir)
    if cfg.model.weights not in ("imagenet", "none") and "://" not in cfg.model.weights:
        from trainer.model import check_weights_file

        check_weights_file(vars(cfg.model), cfg.image_size)  # a file for another backbone fails now
    if cfg.model.weights == "imagenet":
        from trainer.model import resolve_weights

        # Fetches (and caches) the weights now, or fails now naming --weights PATH; the demo may fall back.
        if resolve_weights(vars(cfg.model), cfg.image_size) is None:
            cfg.model.weights = "none"
    return cfg


def run(cfg: PipelineConfig) -> Optional[str]:
    """Run the pipeline; returns the run report's path (None if it could not be written)."""
    with output_lock(cfg.runtime.output_dir):  # before the slow imports: a second run is refused at once
        from tfx import v1 as tfx

        from pipeline.pipeline import create_pipeline

        prepare(cfg)
        pipeline = create_pipeline(
            cfg,
            beam_pipeline_args=beam_args(cfg),
            metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(cfg.metadata_path),
        )
        tfx.orchestration.LocalDagRunner().run(pipeline)
        return write_report(cfg)


def write_report(cfg: PipelineConfig):
    """The run report (pipeline/report.py); a report that cannot be written is a warning, not a failed run."""
    from pipeline import report

    try:
        path = report.write(cfg.runtime.output_dir)
    except Exception:  # the run itself succeeded: say why there is no report and carry on
        log.warning("could not write the run report", exc_info=True)
        return None
    log.info("run report: %s", path)
    return path
