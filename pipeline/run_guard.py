"""The edges of a local run: a log file per run (pipeline/console.py), one clear
line when a run fails, and Ctrl-C / SIGTERM leaving MLMD and the pipeline root clean.

Exit codes of `tfx-image-finetune run`: 0 blessed, 3 not blessed (pipeline.cli), 1 the run failed, 2 bad flags
or configuration, 130 SIGINT, 143 SIGTERM.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from typing import Callable, List, Optional, Tuple

from tfx_image_finetune.config import ConfigError, PipelineConfig

EXIT_FAILED = 1
EXIT_SIGINT = 130  # 128 + SIGINT
EXIT_SIGTERM = 143  # 128 + SIGTERM
PROG = "tfx-image-finetune"


class RunInterrupted(Exception):
    """Raised in the main thread by SIGINT/SIGTERM. An Exception (not a BaseException like KeyboardInterrupt),
    so TFX's launcher handles it as a failed execution: it removes the partial outputs and records FAILED."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


def new_log_file(output_dir: str) -> str:
    logs = os.path.join(output_dir, "logs")
    os.makedirs(logs, exist_ok=True)
    return os.path.join(logs, time.strftime("run-%Y%m%d-%H%M%S.log", time.gmtime()))


def _last_execution_id(metadata_path: str) -> int:
    if not os.path.exists(metadata_path):
        return 0
    from tfx_image_finetune.pipeline.run_summary import store

    return max((e.id for e in store(metadata_path).get_executions()), default=0)


def _node_of(s, execution) -> str:
    for ctx in s.get_contexts_by_execution(execution.id):
        if ctx.type_id == s.get_context_type("node").id:
            return ctx.name.split(".", 1)[-1]
    return "?"


def unfinished_and_failed(metadata_path: str, after_id: int) -> Tuple[List[Tuple[str, int, str]], Optional[str]]:
    """([(node, execution id, state)] of this run's executions left RUNNING/NEW, the node that failed last)."""
    from tfx_image_finetune.pipeline.run_summary import State, store

    if not os.path.exists(metadata_path):
        return [], None
    s = store(metadata_path)
    unfinished, failed = [], None
    for execution in sorted(s.get_executions(), key=lambda e: e.id):
        if execution.id <= after_id:
            continue
        state = execution.last_known_state
        if state in (State.RUNNING, State.NEW):
            unfinished.append((_node_of(s, execution), execution.id, State.Name(state)))
        elif state in (State.FAILED, State.CANCELED):
            failed = _node_of(s, execution)
    return unfinished, failed


def cancel_unfinished(cfg: PipelineConfig, after_id: int) -> List[str]:
    """Marks this run's RUNNING/NEW executions CANCELED in MLMD and removes their output folders."""
    from tfx_image_finetune.pipeline.run_summary import State, store

    unfinished, _ = unfinished_and_failed(cfg.metadata_path, after_id)
    if not unfinished:
        return []
    s = store(cfg.metadata_path)
    executions = s.get_executions_by_id([execution_id for _, execution_id, _ in unfinished])
    for execution in executions:
        execution.last_known_state = State.CANCELED
    s.put_executions(executions)
    for node, execution_id, _ in unfinished:
        for path in glob.glob(os.path.join(cfg.pipeline_root, node, "*", str(execution_id))):
            shutil.rmtree(path, ignore_errors=True)
    return [node for node, _, _ in unfinished]


def _one_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    # Beam re-raises worker errors with their traceback in the message: keep the last line, the cause.
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[-1] if len(lines) > 1 and "Traceback" in text else lines[0]
    return line if len(line) <= 400 else line[:400] + "..."


def run(cfg: PipelineConfig, runner: Callable[[PipelineConfig], None],
        after: Callable[[PipelineConfig], Optional[int]], stderr=None) -> int:
    """Runs `runner(cfg)`, then `after(cfg)`; returns the exit code (`after`'s, once the run went through).
    Config errors propagate (exit 2)."""
    os.makedirs(cfg.runtime.output_dir, exist_ok=True)
    log_file = new_log_file(cfg.runtime.output_dir)
    start_id = _last_execution_id(cfg.metadata_path)
    saved_env = {name: os.environ.get(name) for name in ("PYTHONPATH", "TFX_IMAGE_FINETUNE_RUN_PID")}
    quiet_shutdown()

    def to_log(args):  # Beam's worker threads fail as their `sh -c` parent dies of the same Ctrl-C
        with open(log_file, "a") as f:
            f.write("".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)))

    interrupted: List[int] = []

    def interrupt(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # one interrupt is enough; cleanup must finish
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        threading.excepthook = to_log
        interrupted.append(signum)
        raise RunInterrupted(signum)

    from tfx_image_finetune.pipeline import console

    # Everything at INFO to the log file; on the console the progress lines and the warnings that matter, or
    # everything with --verbose (pipeline/console.py).
    output = contextlib.ExitStack()
    output.enter_context(console.run_output(log_file, verbose=bool(getattr(cfg.runtime, "verbose", False))))
    stderr = stderr or sys.stderr  # once in run_output: quiet, sys.stderr is the console itself
    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            runner(cfg)
        except Exception as err:  # noqa: BLE001
            # Raised from a signal handler, the interrupt may surface as another error (a SystemError out of
            # the C function it landed in, a wrapped Beam error): the signal, not the error, is the cause.
            if interrupted and not isinstance(err, RunInterrupted):
                raise RunInterrupted(interrupted[0]) from err
            raise
        if interrupted:  # some library swallowed the exception: still an interrupted run
            raise RunInterrupted(interrupted[0])
        for sig, handler_before in previous.items():
            signal.signal(sig, handler_before)
        code = after(cfg) or 0
        sys.stdout.flush()  # the summary first: the last line says where everything else went
        print(f"Log: {log_file}", flush=True)
        return code
    except RunInterrupted as err:
        _log_traceback(log_file)
        cancelled = cancel_unfinished(cfg, start_id)
        _, failed = unfinished_and_failed(cfg.metadata_path, start_id)
        where = cancelled[0] if cancelled else failed
        during = f" during {where}" if where else ""
        print(f"{PROG}: {err}{during}: stopped, the execution marked failed in {cfg.metadata_path} and its "
              f"partial output removed; rerun to resume from the cached steps. Log: {log_file}",
              file=stderr, flush=True)
        return EXIT_SIGINT if err.signum == signal.SIGINT else EXIT_SIGTERM
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001 - every failure ends in one line; the traceback goes to the log
        _log_traceback(log_file)
        cancel_unfinished(cfg, start_id)
        _, failed = unfinished_and_failed(cfg.metadata_path, start_id)
        _print_ingest(cfg, start_id, stderr)
        component = f"{failed} failed: " if failed else ""
        print(f"{PROG}: error: {component}{type(err).__name__}: {_one_line(err)}\n"
              f"{PROG}: full traceback in {log_file}", file=stderr, flush=True)
        return EXIT_FAILED
    finally:
        for name, value in saved_env.items():  # a caller in the same process (tests) gets its environment back
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        threading.excepthook = threading.__excepthook__
        for sig, handler_before in previous.items():
            signal.signal(sig, handler_before)
        output.close()


QUIET_SHUTDOWN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "quiet_shutdown")


def quiet_shutdown() -> None:
    """Drops TF's harmless AtomicFunction.__del__ TypeError at exit, here and in the Beam worker processes
    (which inherit PYTHONPATH and so run quiet_shutdown/sitecustomize.py; they also leave SIGINT to the run)."""
    os.environ["TFX_IMAGE_FINETUNE_RUN_PID"] = str(os.getpid())  # its children leave SIGINT to it
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep) if os.environ.get("PYTHONPATH") else []
    if QUIET_SHUTDOWN_DIR not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([QUIET_SHUTDOWN_DIR] + paths)
    if "sitecustomize" not in sys.modules or getattr(sys.modules["sitecustomize"], "__file__", "") != \
            os.path.join(QUIET_SHUTDOWN_DIR, "sitecustomize.py"):
        import importlib.util

        spec = importlib.util.spec_from_file_location("_tfx_image_finetune_quiet_shutdown",
                                                      os.path.join(QUIET_SHUTDOWN_DIR, "sitecustomize.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)


def _log_traceback(log_file: str) -> None:
    with open(log_file, "a") as f:
        f.write(traceback.format_exc())


def _print_ingest(cfg: PipelineConfig, start_id: int, stream) -> None:
    try:
        from tfx_image_finetune.pipeline import run_summary

        for line in run_summary.ingest_lines(*run_summary.kept_ingest_report(cfg.pipeline_root, start_id)):
            print(line, file=stream)
    except Exception:  # noqa: BLE001 - the summary must not hide the failure
        logging.debug("no ingest summary", exc_info=True)
