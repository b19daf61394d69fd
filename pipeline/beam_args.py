"""Beam args for running on the cores of one machine: local runs, and cloud pods without Dataflow.

The runner is pinned to FnApiRunner, the engine Beam's DirectRunner itself ends up on for these pipelines.
Beam 2.74's DirectRunner first tries to download and start the Prism runner binary for every Beam step: offline
that fails and falls back, online it silently switches engines, behind a filtering proxy it can hang.
FnApiRunner keeps the DirectRunner options (`direct_running_mode`, `direct_num_workers`) and never does that.

`--extra_package=` (empty) tells TFX that the dependencies are handled: without any of Beam's dependency
flags, TFX builds an sdist of itself before every Beam component (`dependency_utils`) for remote workers to
install, which workers on this machine, importing the installed TFX, never use.
"""

from __future__ import annotations

from typing import List, Optional

from tfx_image_finetune.config import AUTO_BEAM_MODE, AUTO_IN_MEMORY_MAX_IMAGES

RUNNER = "FnApiRunner"


def running_mode(setting: str, local_files: Optional[int]) -> str:
    """`auto`: in the process itself up to AUTO_IN_MEMORY_MAX_IMAGES files of a local image root (a worker
    process per core costs a TF import each, ~15 s, more than it saves on small data), else a process per core."""
    if setting != AUTO_BEAM_MODE:
        return setting
    small = local_files is not None and local_files <= AUTO_IN_MEMORY_MAX_IMAGES
    return "in_memory" if small else "multi_processing"


def local_beam_args(running_mode: str = "multi_processing", num_workers: int = 0) -> List[str]:
    """`num_workers` 0: one worker per CPU core."""
    return [f"--runner={RUNNER}", f"--direct_running_mode={running_mode}", f"--direct_num_workers={num_workers}",
            "--extra_package="]
