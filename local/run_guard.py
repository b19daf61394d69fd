"""The edges of a local run, inside the run's own process (local/run_child.py): a log file per run
(local/console.py) and one clear line when a run fails, the traceback in the log file.

Ctrl-C and SIGTERM are not handled here: the supervising process (local/supervisor.py) kills this one and
cleans up after it, so no signal ever lands in the middle of TFX, Beam or Keras code.

Exit codes of `tfx-image-finetune run`: 0 blessed, 3 not blessed, 1 the run failed, 2 bad flags or
configuration, 130 SIGINT, 143 SIGTERM.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import logging
import os
import sys
import time
import traceback
from typing import Callable, Optional

from tfx_image_finetune.config import ConfigError, PipelineConfig

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_BLESSED = 0, 1, 2, 3  # EXIT_OK: blessed (run), done (other commands)
EXIT_SIGINT = 130  # 128 + SIGINT
EXIT_SIGTERM = 143  # 128 + SIGTERM
PROG = "tfx-image-finetune"


def new_log_file(output_dir: str) -> str:
    logs = os.path.join(output_dir, "logs")
    os.makedirs(logs, exist_ok=True)
    return os.path.join(logs, time.strftime("run-%Y%m%d-%H%M%S.log", time.gmtime()))


def _one_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    # Beam re-raises worker errors with their traceback in the message: keep the last line, the cause.
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[-1] if len(lines) > 1 and "Traceback" in text else lines[0]
    return line if len(line) <= 400 else line[:400] + "..."


def run(cfg: PipelineConfig, runner: Callable[[PipelineConfig], None],
        after: Callable[[PipelineConfig], Optional[int]], stderr=None, log_file: Optional[str] = None) -> int:
    """Runs `runner(cfg)`, then `after(cfg)`; returns the exit code (`after`'s, once the run went through).
    `stderr`: the console (default sys.stderr); `log_file`: the run's log (default a new one under the output
    folder). Config errors propagate (exit 2)."""
    from tfx_image_finetune.local import executions

    os.makedirs(cfg.runtime.output_dir, exist_ok=True)
    log_file = log_file or new_log_file(cfg.runtime.output_dir)
    start_id = executions.last_execution_id(cfg.metadata_path)
    saved_pythonpath = os.environ.get("PYTHONPATH")
    quiet_shutdown()

    from tfx_image_finetune.local import console

    # Everything at INFO to the log file; on the console the progress lines and the warnings that matter, or
    # everything with --verbose (local/console.py).
    output = contextlib.ExitStack()
    output.enter_context(console.run_output(log_file, verbose=bool(getattr(cfg.runtime, "verbose", False)),
                                            stream=stderr))
    stderr = stderr or sys.stderr  # once in run_output: quiet, sys.stderr is the console itself
    try:
        runner(cfg)
        code = after(cfg) or 0
        sys.stdout.flush()  # the summary first: the last line says where everything else went
        print(f"Log: {log_file}", flush=True)
        return code
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001 - every failure ends in one line; the traceback goes to the log
        _log_traceback(log_file)
        executions.cancel_unfinished(cfg.metadata_path, cfg.pipeline_root, start_id)
        _, failed = executions.unfinished_and_failed(cfg.metadata_path, start_id)
        _print_ingest(cfg, start_id, stderr)
        component = f"{failed} failed: " if failed else ""
        print(f"{PROG}: error: {component}{type(err).__name__}: {_one_line(err)}\n"
              f"{PROG}: full traceback in {log_file}", file=stderr, flush=True)
        return EXIT_FAILED
    finally:
        if saved_pythonpath is None:  # a caller in the same process (tests) gets its environment back
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved_pythonpath
        output.close()


# Package data, kept as a real folder path: it goes on PYTHONPATH for this process and the Beam workers.
QUIET_SHUTDOWN_DIR = str(importlib.resources.files("tfx_image_finetune.local") / "quiet_shutdown")


def quiet_shutdown() -> None:
    """Drops TF's harmless AtomicFunction.__del__ TypeError at exit, here and in the Beam worker processes
    (which inherit PYTHONPATH and so run quiet_shutdown/sitecustomize.py)."""
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
        from tfx_image_finetune.report import run_summary

        for line in run_summary.ingest_lines(*run_summary.kept_ingest_report(cfg.pipeline_root, start_id)):
            print(line, file=stream)
    except Exception:  # noqa: BLE001 - the summary must not hide the failure
        logging.debug("no ingest summary", exc_info=True)
