"""The run's own process, started by local/supervisor.py: `python -m tfx_image_finetune.local.run_child`
with the pickled RunJob on standard input. It runs the pipeline (local/runner.py) inside the run's
edges (local/run_guard.py) and prints the closing lines; its exit code is the run's."""

from __future__ import annotations

import ctypes
import os
import pickle
import signal
import sys
from typing import List, Optional

from tfx_image_finetune.config import ConfigError, PipelineConfig
from tfx_image_finetune.local import run_guard
from tfx_image_finetune.local.run_guard import EXIT_NOT_BLESSED, EXIT_OK, EXIT_USAGE, PROG

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int) -> None:
    """SIGKILL to this process when the supervisor dies, however it dies (Linux; elsewhere a no-op)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (AttributeError, OSError):
        return
    if os.getppid() != parent_pid:  # it died before prctl took effect
        os._exit(run_guard.EXIT_FAILED)


def drift_lines(cfg: PipelineConfig) -> List[str]:
    """WARNING lines for data drift against the replaced model's training data (report/drift.py); a comparison
    that fails is itself a warning, never a failed run."""
    from tfx_image_finetune.components.data_drift.compare import warning_lines
    from tfx_image_finetune.report import drift

    try:
        return warning_lines(drift.drift(cfg.metadata_path, cfg.data.drift_threshold, cfg.data.drift_comparator,
                                               cfg.data.label_key))
    except Exception as err:  # the run itself succeeded
        return [f"WARNING: could not compare the data with the replaced model's: {type(err).__name__}: {err}"]


def closing_lines(cfg: PipelineConfig, report: Optional[str]) -> int:
    """What the run did (ingested and skipped files, strategy, baseline, verdict, push, report); the exit code."""
    from tfx_image_finetune.report import run_summary  # MLMD and TFMA: only once there is a run to describe

    for line in run_summary.ingest_lines(*run_summary.ingest_report(cfg.metadata_path)):
        print(line)
    print(run_summary.describe(cfg.metadata_path, cfg.serving_model_dir))
    for line in drift_lines(cfg):
        print(line)
    if report:
        print(f"Report: {os.path.abspath(report)}")
    return EXIT_OK if run_summary.blessed(cfg.metadata_path) else EXIT_NOT_BLESSED


def main() -> int:
    from tfx_image_finetune.local import runner as local_runner
    from tfx_image_finetune.local import output_lock

    job = pickle.load(sys.stdin.buffer)
    die_with_parent(job.parent_pid)
    output_lock.inherited(job.cfg.runtime.output_dir)
    console = None
    if job.console_fd is not None:  # Python's writes go to the console directly, not through fd 2's filter
        console = open(job.console_fd, "w", buffering=1, errors="backslashreplace", encoding="utf-8")
        sys.stderr = console
    reports = []  # the report this run wrote (None if it could not be written)

    def run_pipeline(cfg: PipelineConfig) -> None:
        reports.append(local_runner.run(cfg, job.layout))

    try:
        return run_guard.run(job.cfg, run_pipeline, lambda cfg: closing_lines(cfg, reports[-1] if reports else None),
                             stderr=console, log_file=job.log_file)
    except ConfigError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr, flush=True)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
