"""What a local run shows on the console, and what goes to its log file only.

By default (quiet) the console shows one line when a component starts and one when it ends, with its seconds
(`[ 3/11] StatisticsGen ...`, `[ 3/11] StatisticsGen: 12.3 s` or `: cached`), WARNING and worse records
(less the short NOISE list below), the Keras epoch lines (Keras prints them to stdout, which is left alone) and
whatever the caller prints. The run's log file gets every record at INFO and up, as `--verbose` shows them on
the console too.

Where the noise comes from (TFX 1.16, Beam 2.74, TF 2.16):

* TFX's own progress: `tfx.orchestration.local.local_dag_runner` logs (through absl, logger `absl`)
  'Component %s is running.' / 'Component %s is finished.' around each node, 'Skipping component %s.' for a
  node a partial run leaves out; `tfx.orchestration.portable.launcher` logs 'A cached execution %d is used.'
  in between when the cache answers, and 'Execution %d failed.' (ERROR) when the executor raised. Those are
  turned into the progress lines; every other INFO record goes to the file only.
* Beam `multi_processing` workers are `sh -c python -m apache_beam.runners.worker.sdk_worker_main` processes
  (`local_job_service.SubprocessSdkWorker`). Their log records come back over gRPC and are logged here by
  logger `apache_beam.runners.portability.local_job_service` as 'Worker: %s' (the whole LogEntry proto on one
  line) at the worker record's level: INFO ones ("SDK Harness waiting for in-flight requests", channel
  notices) go to the file; a worker's WARNING is shown as its message only. What they write to their fd 1/2
  directly (TF's C++ start-up lines on every TF import) goes to the inherited descriptors: see below.
* TF's C++ logging writes to the process's fd 2, once per process that imports TF (this one, and each Beam
  worker). In quiet mode TF_CPP_MIN_LOG_LEVEL=1 is set (unless already set) before TF is imported, which drops
  the C++ INFO lines (oneDNN notice, "Could not find cuda drivers", the CPU-instructions notice), and fd 2 is
  routed through a small filter process (`_FD2_FILTER`) that copies every line to the log file and passes all
  but FD2_NOISE on to the console. Python's `sys.stderr` keeps writing to the console directly.
* TF's SavedModel export (`AutoTrackable._trackable_children`) saves absl's verbosity, sets it to FATAL and
  restores it: restored from absl's default (-1) that sets the `absl` logger to WARNING, after which no TFX INFO
  record would be made at all (not even for the file). absl's verbosity is held at INFO for the run, so the
  restore restores INFO.
* Python warnings are routed to the log (`logging.captureWarnings`): shown as WARNING records.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import subprocess
import sys
import threading
import time
from typing import Iterator, List, Optional, Sequence, TextIO, Tuple

FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

TFX_RUNNING = "Component %s is running."  # tfx/orchestration/local/local_dag_runner.py
TFX_FINISHED = "Component %s is finished."
TFX_SKIPPED = "Skipping component %s."
TFX_CACHED = "A cached execution %d is used."  # tfx/orchestration/portable/launcher.py
TFX_FAILED = "Execution %d failed."
BEAM_WORKER_LOGGER = "apache_beam.runners.portability.local_job_service"
BEAM_WORKER_FORMAT = "Worker: %s"

# Records at WARNING or worse that are still only noise to whoever runs this pipeline (nothing they could act
# on, nothing wrong with their data or model): (logger name, regular expression matched at the message's start).
# Measured on `run --demo` (multi_processing, 2 cores: 14 + 8 + 4 + 2 + 1 records); each one is still in the
# log file.
NOISE: Tuple[Tuple[str, str], ...] = (
    # TFX 1.16 tests `if artifact_query.property_predicate:` on a proto message, which is always true: every
    # input channel of every component resolved logs this (channel_resolver._filter_by_artifact_query).
    ("absl", r"ArtifactQuery\.property_predicate is not supported\."),
    # Every Beam worker process at start-up (per core and Beam component): the directory is only for custom
    # coders and logical types, which this pipeline does not register.
    (BEAM_WORKER_LOGGER, r"No semi_persistent_directory found"),
    # TF's deprecation notices for calls inside TFX/TFMA/TFT (e.g. TFMA's writer using tf_record_iterator).
    ("tensorflow", r"From .*: .* is deprecated and will be removed"),
    # TFX's Transform executor: the label vocabulary needs an analysis pass, by design of this preprocessing_fn.
    ("absl", r"Not using the in-place Transform because the following features require analyzing"),
    # TFT tracing the preprocessing_fn (TF 2 mode) with its vocabulary lookup tables: a note on TFT's own graph.
    ("absl", r"Tables initialized inside a tf\.function +will be re-initialized"),
    # Beam's FnApiRunner, once per Beam component in `in_memory` mode (the demo's `auto` choice), where the
    # direct_num_workers passed for the other modes (one per core) does not apply.
    ("apache_beam.runners.portability.fn_api_runner.fn_runner", r"If direct_num_workers is not equal to 1"),
    # TFMA trying tf_keras' loader on the exported model, which is saved without Keras metadata on purpose
    # (trainer/export.py: no layer traces); it then serves the model's signatures, as intended.
    ("tensorflow", r"SavedModel saved prior to TF 2\.5 detected when loading Keras model"),
)

# Lines on fd 2 (TF's C++ logging, in this process and in each Beam worker that imports TF) that are only noise
# here; they still go to the log file. Regular expressions, searched in each line. Measured on the same run: 36
# start-up lines (9 TF imports: this process and 2 workers for each of 4 Beam components), 14 rendezvous lines.
FD2_NOISE: Tuple[str, ...] = (
    # TF 2.16's CUDA-enabled wheel on a machine without CUDA: three E lines per TF import, at any
    # TF_CPP_MIN_LOG_LEVEL below 3; the GPU is not used either way.
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    # TF-TRT probing for TensorRT (a W line per TF import); TensorRT is never used by this pipeline.
    r"TF-TRT Warning: Could not find TensorRT",
    # TF 2.16 logs a W line each time a tf.data iterator reaches its end (every epoch, evaluation, export).
    r"Local rendezvous is aborting with status: OUT_OF_RANGE: End of sequence",
    r"^\s*\[\[\{\{node IteratorGetNext\}\}\]\]\s*$",  # the same message's continuation lines
    # The TFLite converter (--tflite): absl's start-up notice, two W lines about options TF itself sets, the
    # quantizer's summary line (printed, not logged), and the interpreter's XNNPACK line (TFLiteGate, predict).
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"tf_tfl_flatbuffer_helpers\.cc:\d+\] Ignored (output_format|drop_control_dependency)",
    r"^fully_quantize: \d+, inference_type: \d+, input_inference_type: \w+, output_inference_type: \w+$",
    r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$",
)

# The filter fd 2 is routed through in quiet mode: a process of its own, so that what a crashing run writes last
# (a C++ CHECK failure, a fatal Python error) is still read and kept. It ignores SIGINT and runs in its own
# session: Ctrl-C is the run's to handle; the filter ends when the last writer (this process, a Beam worker)
# closes the pipe.
_FD2_FILTER = r"""
import os, re, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
console, log_path, patterns = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
noise = re.compile("|".join(patterns)) if patterns else None
try:
    log = open(log_path, "ab", buffering=0)
except OSError:
    log = None
for line in iter(sys.stdin.buffer.readline, b""):  # read to the end whatever fails: writers never get EPIPE
    try:
        if log is not None:
            log.write(b"[fd 2] " + (line if line.endswith(b"\n") else line + b"\n"))
    except OSError:
        pass
    try:
        if noise is None or not noise.search(line.decode("utf-8", "replace")):
            os.write(console, line)
    except OSError:
        pass
"""

_active: List["_Progress"] = []  # the run_output in effect, for expect_components()


def expect_components(count: int) -> None:
    """Tells the progress lines how many pipeline nodes the run has (`[ 3/11]`); without it they count up
    (`[3]`). A no-op outside run_output."""
    for progress in _active:
        progress.total = count


def is_noise(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    if record.name == BEAM_WORKER_LOGGER:
        message = worker_message(record)
    return any(record.name == name and re.match(pattern, message) for name, pattern in NOISE)


def worker_message(record: logging.LogRecord) -> str:
    """A Beam worker's record, as logged by local_job_service: the `message` field of its LogEntry."""
    text = record.getMessage()
    if record.msg != BEAM_WORKER_FORMAT:
        return text
    match = re.search(r'message: "((?:[^"\\]|\\.)*)"', text)
    if not match:
        return text
    try:
        return match.group(1).encode("latin-1", "backslashreplace").decode("unicode_escape")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return match.group(1)


class _Progress:
    """TFX's component records -> `[ i/n] Node ...` and `[ i/n] Node: 12.3 s` (or cached / failed / skipped)."""

    def __init__(self, total: Optional[int]):
        self.total = total
        self.index = 0
        self.node: Optional[str] = None
        self.started = 0.0
        self.cached = False
        self.lock = threading.Lock()

    def _counter(self) -> str:
        if self.total:
            width = len(str(self.total))
            return f"[{self.index:>{width}}/{self.total}]"
        return f"[{self.index}]"

    def line(self, record: logging.LogRecord) -> Optional[str]:
        """The progress line for a TFX record, "" for one that only updates the state, None for other records."""
        if record.name != "absl" or not isinstance(record.msg, str):
            return None
        msg, args = record.msg, record.args if isinstance(record.args, tuple) else ()
        with self.lock:
            if msg == TFX_RUNNING and args:
                self.index += 1
                self.node, self.started, self.cached = str(args[0]), time.monotonic(), False
                return f"{self._counter()} {self.node} ..."
            if msg == TFX_CACHED:
                self.cached = True
                return ""
            if msg == TFX_FINISHED and args:
                node = str(args[0])
                done = "cached" if self.cached and node == self.node else f"{time.monotonic() - self.started:.1f} s"
                self.node = None
                return f"{self._counter()} {node}: {done}"
            if msg == TFX_FAILED and self.node:
                return f"{self._counter()} {self.node}: failed after {time.monotonic() - self.started:.1f} s"
            if msg == TFX_SKIPPED and args:
                self.index += 1
                return f"{self._counter()} {args[0]}: skipped"
        return None


class QuietConsoleHandler(logging.StreamHandler):
    """The console in quiet mode: progress lines, and WARNING+ records that are not NOISE, as `LEVEL: message`
    (a record's traceback stays in the log file: the console gets the exception's last line)."""

    def __init__(self, stream: TextIO, progress: _Progress):
        super().__init__(stream)
        self.progress = progress
        self.setLevel(logging.DEBUG)  # TFX's progress records are INFO: text() chooses

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.text(record)
            if text:
                self.stream.write(text + "\n")
                self.flush()
        except Exception:  # noqa: BLE001 - as logging.Handler does
            self.handleError(record)

    def text(self, record: logging.LogRecord) -> Optional[str]:
        line = self.progress.line(record)
        if line is not None:
            return line
        if record.levelno < logging.WARNING or is_noise(record):
            return None
        message = record.getMessage()
        if record.name == BEAM_WORKER_LOGGER:
            message = f"(Beam worker) {worker_message(record)}"
        elif record.name == "py.warnings":  # "file:line: Category: text" and the source line: the first one
            message = message.strip().splitlines()[0] if message.strip() else message
        if record.exc_info and record.exc_info[1] is not None:
            err = record.exc_info[1]
            cause = (str(err).strip().splitlines() or [""])[-1]
            message += f" ({type(err).__name__}{': ' + cause if cause else ''})"
        return f"{record.levelname}: {message}"


def _is_console_handler(handler: logging.Handler) -> bool:
    if isinstance(handler, logging.FileHandler) or not isinstance(handler, logging.StreamHandler):
        return False
    consoles = {id(s) for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__) if s is not None}
    stream = getattr(handler, "stream", None)
    if id(stream) in consoles:
        return True
    try:
        return stream.fileno() in (1, 2)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


def _uses_fd2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


@contextlib.contextmanager
def fd2_through_filter(log_file: str, patterns: Sequence[str]) -> Iterator[Optional[int]]:
    """fd 2 of this process (and so of every process it starts) into the filter; yields the console's fd (a
    duplicate of the former fd 2), or None where that cannot be done."""
    if os.name != "posix":
        yield None
        return
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError, OSError):
        pass
    console = os.dup(2)
    read_end, write_end = os.pipe()
    try:
        child = subprocess.Popen([sys.executable, "-S", "-c", _FD2_FILTER, str(console), log_file, *patterns],
                                 stdin=read_end, stdout=console, stderr=console, pass_fds=(console,),
                                 start_new_session=True, env={"PYTHONDONTWRITEBYTECODE": "1"})
    except OSError:
        for fd in (read_end, write_end, console):
            os.close(fd)
        yield None
        return
    os.close(read_end)
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield console
    finally:
        os.dup2(console, 2)  # this process's end of the pipe closed: the filter ends once the workers' are too
        os.close(console)
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:  # a worker still holds the pipe: the filter ends with it
            pass


@contextlib.contextmanager
def run_output(log_file: str, verbose: bool = False, stream: Optional[TextIO] = None,
               total: Optional[int] = None, redirect_fd2: Optional[bool] = None) -> Iterator[TextIO]:
    """The run's output: every record at INFO+ to `log_file`; on the console (`stream`, default sys.stderr)
    everything as well if `verbose`, else the progress lines and the warnings that matter (module doc).
    Quiet, with `stream` the process's fd 2, fd 2 itself goes through the noise filter too (`redirect_fd2`
    overrides that). `total`: the node count, as expect_components(). Yields the console stream. Undoes every
    setting on the way out."""
    from absl import logging as absl_logging  # TFX's logging: installed with it

    root, absl_logger = logging.getLogger(), logging.getLogger("absl")
    saved_root_level, saved_stderr = root.level, sys.stderr
    saved_absl = (absl_logging.get_verbosity(), absl_logger.level)
    saved_tf_cpp = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    was_capturing = getattr(logging, "_warnings_showwarning", None) is not None
    stream = stream if stream is not None else sys.stderr
    progress = _Progress(total)
    with contextlib.ExitStack() as undo:
        # Console handlers already there (cli.main's basicConfig, TF's own): this one replaces them.
        for name in ("", "absl", "tensorflow"):
            logger = logging.getLogger(name)
            for handler in list(logger.handlers):
                if _is_console_handler(handler):
                    logger.removeHandler(handler)
                    undo.callback(logger.addHandler, handler)

        @undo.callback
        def _restore():
            logging.captureWarnings(was_capturing)
            sys.stderr = saved_stderr
            root.setLevel(saved_root_level)
            absl_logging.set_verbosity(saved_absl[0])
            absl_logger.setLevel(saved_absl[1])
            if saved_tf_cpp is None:
                os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)

        if verbose:
            console_handler: logging.Handler = logging.StreamHandler(stream)
            console_handler.setFormatter(logging.Formatter(FILE_FORMAT))
            console_handler.setLevel(logging.INFO)
        else:
            if saved_tf_cpp is None:
                os.environ["TF_CPP_MIN_LOG_LEVEL"] = "1"  # read by TF on import, here and in the Beam workers
            if redirect_fd2 if redirect_fd2 is not None else _uses_fd2(stream):
                console_fd = undo.enter_context(fd2_through_filter(log_file, FD2_NOISE))
                if console_fd is not None and _uses_fd2(stream):
                    # Python's own writes to the console go straight to it, not through the filter.
                    direct = open(os.dup(console_fd), "w", buffering=1, errors="backslashreplace",
                                  encoding=getattr(stream, "encoding", None) or "utf-8")
                    undo.callback(direct.close)
                    if stream is sys.stderr:
                        sys.stderr = direct
                        undo.callback(setattr, sys, "stderr", saved_stderr)  # before `direct` is closed
                    stream = direct
            console_handler = QuietConsoleHandler(stream, progress)
        file_handler = logging.FileHandler(log_file)
        undo.callback(file_handler.close)
        file_handler.setFormatter(logging.Formatter(FILE_FORMAT))
        file_handler.setLevel(logging.INFO)
        for handler in (file_handler, console_handler):
            root.addHandler(handler)
            undo.callback(root.removeHandler, handler)
        root.setLevel(logging.INFO)
        absl_logging.set_verbosity(absl_logging.INFO)
        logging.captureWarnings(True)
        _active.append(progress)
        undo.callback(_active.remove, progress)
        undo.callback(_flush, stream)
        yield stream


def _flush(stream) -> None:
    try:
        stream.flush()
    except (AttributeError, ValueError, OSError):
        pass
