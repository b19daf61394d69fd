"""A local run in a process of its own, and Ctrl-C / SIGTERM handled outside it.

A signal handler that raises into whatever frame runs (a Beam bundle, Keras' fit, TF's C++, a `finally` of
TFX's launcher) ends differently depending on where the signal lands. Instead, this process (the CLI: no TF, no
TFX) starts the run (local/run_child.py) in a session of its own, with its Beam workers, and waits. On
SIGINT or SIGTERM it kills that whole session at once, then, holding the output lock, marks the executions the
run left RUNNING as CANCELED and removes their partial outputs (local/executions.py), and prints one line.
Every moment of a run (Beam, fit, export, between components, the Pusher's rename) ends the same way: no half
written artifact is recorded, no pushed version is half copied (the Pusher renames a complete copy), and the
next run resumes from the cached steps. The run's process dies with this one (PR_SET_PDEATHSIG) and holds the
output lock as long as it lives (it inherits the locked descriptor).

The same clean-up runs before each run, for what a run killed with `kill -9` left: executions RUNNING in MLMD,
and the temporary copies of its push (components/pusher/staging.py).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import List, Optional

from tfx_image_finetune.components.pusher import staging
from tfx_image_finetune.config import PipelineConfig
from tfx_image_finetune.local import executions
from tfx_image_finetune.local.run_guard import (EXIT_FAILED, EXIT_SIGINT, EXIT_SIGTERM, PROG, new_log_file)


@dataclass
class RunJob:
    """What the run's process needs, handed over on its standard input (pickled: the same typed config)."""

    cfg: PipelineConfig
    layout: object  # pipeline.data_layout.DataLayout
    log_file: str
    console_fd: Optional[int]  # the console, where fd 2 goes through the noise filter; None: fd 2 is the console
    parent_pid: int


def run(cfg: PipelineConfig, layout, lock_fd: Optional[int]) -> int:
    """Runs the pipeline in its own process; returns the exit code. The caller holds the output lock
    (`lock_fd`: its locked descriptor, passed on to the run's process)."""
    from tfx_image_finetune.local import console

    os.makedirs(cfg.runtime.output_dir, exist_ok=True)
    log_file = new_log_file(cfg.runtime.output_dir)
    stale = _clean_up(cfg, 0)
    if stale:
        print(f"{PROG}: note: an earlier run was killed during {', '.join(stale)}: its execution(s) marked "
              "CANCELED and the partial output removed", file=sys.stderr, flush=True)
    start_id = executions.last_execution_id(cfg.metadata_path)
    interrupted: List[int] = []
    proc: List[subprocess.Popen] = []

    def stop(signum, frame):  # only records and kills: nothing is raised into the frame it lands in
        if not interrupted:
            interrupted.append(signum)
        for p in proc:
            _kill_session(p)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = None
    try:
        with contextlib.ExitStack() as fd2:
            console_fd = None
            if not cfg.runtime.verbose and _is_fd2(sys.stderr):
                console_fd = fd2.enter_context(console.fd2_through_filter(log_file, console.FD2_NOISE))
            job = RunJob(cfg, layout, log_file, console_fd, os.getpid())
            if not interrupted:
                proc.append(_start(job, [fd for fd in (console_fd, lock_fd) if fd is not None]))
                if interrupted:  # the signal came while it was being started
                    _kill_session(proc[0])
                code = proc[0].wait()
        # fd 2 is the console again, and the noise filter has written what the run left in it.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)  # the clean-up must finish
        if interrupted and (code is None or code < 0):  # (a run that had ended keeps its own exit code)
            return _interrupted(cfg, interrupted[0], start_id, log_file)
        if code < 0:  # killed by someone else: the kernel's OOM killer, kill -9
            return _died(cfg, -code, start_id, log_file)
        return code
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _start(job: RunJob, fds: List[int]) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-m", "tfx_image_finetune.local.run_child"], stdin=subprocess.PIPE,
                         pass_fds=fds, start_new_session=True)
    try:
        p.stdin.write(pickle.dumps(job))
        p.stdin.close()
    except BrokenPipeError:  # it died at once: its exit code says so
        pass
    return p


def _kill_session(p: subprocess.Popen) -> None:
    """SIGKILL to the run's process and everything it started (its Beam workers): nothing runs on."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _is_fd2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


def _clean_up(cfg: PipelineConfig, after_id: int) -> List[str]:
    """What a run's process that is gone left: its unfinished executions (their nodes returned) and its pushes'
    temporary copies in the serving folder."""
    cancelled = executions.cancel_unfinished(cfg.metadata_path, cfg.pipeline_root, after_id)
    staging.remove_stale(cfg.serving_model_dir)
    return cancelled


def _interrupted(cfg: PipelineConfig, signum: int, start_id: int, log_file: str) -> int:
    cancelled = _clean_up(cfg, start_id)
    name = signal.Signals(signum).name
    where = f" during {cancelled[0]}" if cancelled else ""
    cleaned = (f"the execution marked failed in {cfg.metadata_path} and its partial output removed; " if cancelled
               else "")
    _log(log_file, f"{name} received: the run's process was killed{where}; cancelled: {cancelled}")
    print(f"{PROG}: interrupted by {name}{where}: stopped, {cleaned}rerun to resume from the cached steps. "
          f"Log: {log_file}", file=sys.stderr, flush=True)
    return EXIT_SIGINT if signum == signal.SIGINT else EXIT_SIGTERM


def _died(cfg: PipelineConfig, signum: int, start_id: int, log_file: str) -> int:
    cancelled = _clean_up(cfg, start_id)
    name = signal.Signals(signum).name
    where = f" during {cancelled[0]}" if cancelled else ""
    hint = " (SIGKILL from outside: often the kernel's out-of-memory killer)" if signum == signal.SIGKILL else ""
    _log(log_file, f"the run's process died of {name}{where}; cancelled: {cancelled}")
    print(f"{PROG}: error: the run's process died of {name}{hint}{where}; its unfinished execution(s) marked "
          f"failed and their partial output removed. Log: {log_file}", file=sys.stderr, flush=True)
    return EXIT_FAILED


def _log(log_file: str, message: str) -> None:
    with open(log_file, "a") as f:
        f.write(f"supervisor: {message}\n")
