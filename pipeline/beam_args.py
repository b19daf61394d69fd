"""Beam args for running on the cores of one machine: local runs, and cloud pods without Dataflow.

The runner is pinned to FnApiRunner, the engine Beam's DirectRunner itself ends up on for these pipelines.
Beam 2.74's DirectRunner first tries to download and start the Prism runner binary for every Beam step: offline
that fails and falls back, online it silently switches engines, behind a filtering proxy it can hang.
FnApiRunner keeps the DirectRunner options (`direct_running_mode`, `direct_num_workers`) and never does that.
"""

from __future__ import annotations

from typing import List

RUNNER = "FnApiRunner"


def local_beam_args(running_mode: str = "multi_processing", num_workers: int = 0) -> List[str]:
    """`num_workers` 0: one worker per CPU core."""
    return [f"--runner={RUNNER}", f"--direct_running_mode={running_mode}", f"--direct_num_workers={num_workers}"]
