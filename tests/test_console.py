"""The console of a run shows the pipeline (a line per component start and end, warnings that matter), the log
file everything at INFO; --verbose shows everything. Real records through the real logging and absl modules,
in the formats TFX 1.16 and Beam 2.74 log them; no pipeline run here."""

from __future__ import annotations

import importlib.util
import io
import logging
import os
import subprocess
import sys
import textwrap
import warnings

import pytest
from absl import logging as absl_logging

from tfx_image_finetune.local import console
from tfx_image_finetune.local import run_guard

TFX_ROOT = os.path.dirname(importlib.util.find_spec("tfx").origin)
BEAM_ROOT = os.path.dirname(importlib.util.find_spec("apache_beam").origin)
# A Beam worker's record as local_job_service logs it in the run's process (one LogEntry, on one line).
WORKER_INFO = ('severity: INFO timestamp {   seconds: 1796200063   nanos: 791525602 } message: "SDK Harness '
               'waiting for in-flight requests to complete" log_location: "/x/sdk_worker.py:288" thread: "MainThread"')
WORKER_WARN = ('severity: WARN timestamp {   seconds: 1796200063   nanos: 783619880 } message: "could not read '
               '\\"a.jpg\\"" instruction_id: "bundle_4" transform_id: "Map(f)" log_location: "/x/f.py:7"')
WORKER_NOISE = ('severity: WARN timestamp {   seconds: 1796200063   nanos: 581741333 } message: "No '
                'semi_persistent_directory found:  User registered objects (e.g. schema, logical type) through '
                'registeries will not be available" log_location: "/x/sdk_worker_main.py:139"')


def _component(node, seconds_cached=False, failed=False):
    """What LocalDagRunner and the portable launcher log around one node (absl, as they do)."""
    absl_logging.info(console.TFX_RUNNING, node)
    absl_logging.info("Running launcher for %s", "node_info { id: ... }")
    if seconds_cached:
        absl_logging.info(console.TFX_CACHED, 7)
    else:
        absl_logging.info("Going to run a new execution %d", 7)
    if failed:
        absl_logging.error(console.TFX_FAILED, 7)
        return
    absl_logging.info(console.TFX_FINISHED, node)


def _a_run(log_file, verbose, total=None):
    shown = io.StringIO()
    with console.run_output(log_file, verbose=verbose, stream=shown) as stream:
        assert stream is shown
        if total:
            console.expect_components(total)
        logging.getLogger("tfx_image_finetune.local.runner").info("using the generated demo images")
        _component("ImageFolderExampleGen", seconds_cached=True)
        _component("StatisticsGen")
        worker = logging.getLogger(console.BEAM_WORKER_LOGGER)
        worker.info(console.BEAM_WORKER_FORMAT, WORKER_INFO)
        worker.warning(console.BEAM_WORKER_FORMAT, WORKER_WARN)
        worker.warning(console.BEAM_WORKER_FORMAT, WORKER_NOISE)
        logging.getLogger("apache_beam.runners.portability.fn_api_runner.fn_runner").warning(
            "If direct_num_workers is not equal to 1, direct_running_mode should be `multi_processing` or "
            "`multi_threading` instead of `in_memory` in order for it to have the desired worker parallelism "
            "effect. direct_num_workers: %d ; running_mode: %s", 2, "in_memory")
        logging.getLogger("tensorflow").warning("5 out of the last 5 calls triggered tf.function retracing")
        warnings.warn("a Python warning that matters", UserWarning)
        try:
            raise ValueError("disk full\nno space left")
        except ValueError:
            logging.getLogger("tfx_image_finetune.local.runner").warning("could not write the run "
                                                                                  "report", exc_info=True)
        _component("Trainer", failed=True)
    return shown.getvalue().splitlines(), open(log_file).read()


def test_quiet_console_shows_the_components_and_the_warnings_that_matter_the_file_everything(tmp_path):
    shown, logged = _a_run(str(tmp_path / "run.log"), verbose=False, total=11)
    assert shown[0] == "[ 1/11] ImageFolderExampleGen ..."
    assert shown[1] == "[ 1/11] ImageFolderExampleGen: cached"
    assert shown[2] == "[ 2/11] StatisticsGen ..."
    assert shown[3].startswith("[ 2/11] StatisticsGen: ") and shown[3].endswith(" s")
    float(shown[3].split(": ")[1][:-2])
    assert shown[4:] == [
        'WARNING: (Beam worker) could not read "a.jpg"',
        "WARNING: 5 out of the last 5 calls triggered tf.function retracing",
        shown[6],
        "WARNING: could not write the run report (ValueError: no space left)",
        "[ 3/11] Trainer ...",
        shown[9],
    ], shown
    assert shown[6].startswith("WARNING: ") and "UserWarning: a Python warning that matters" in shown[6]
    assert shown[9].startswith("[ 3/11] Trainer: failed after ")
    assert not [line for line in shown if "Traceback" in line or "semi_persistent" in line
                or "direct_num_workers" in line or "in-flight" in line]
    # The file: every record at INFO and up, in full, the noise and the tracebacks included.
    for text in ("INFO absl: Component StatisticsGen is running.", "INFO absl: A cached execution 7 is used.",
                 "INFO absl: Going to run a new execution 7", "ERROR absl: Execution 7 failed.",
                 "using the generated demo images", "SDK Harness waiting for in-flight requests",
                 "No semi_persistent_directory found", "direct_num_workers: 2 ; running_mode: in_memory",
                 "WARNING py.warnings: ", "a Python warning that matters", "Traceback (most recent call last)",
                 "ValueError: disk full"):
        assert text in logged, text


def test_verbose_console_shows_every_record_as_the_file_does(tmp_path):
    shown, logged = _a_run(str(tmp_path / "run.log"), verbose=True)
    assert shown == logged.splitlines() and len(shown) > 20
    assert any("INFO absl: Component StatisticsGen is running." in line for line in shown)
    assert any("SDK Harness waiting for in-flight requests" in line for line in shown)
    assert any("No semi_persistent_directory found" in line for line in shown)
    assert not [line for line in shown if line.startswith("[")]  # TFX's own records, not progress lines


# Measured on `run --demo` and the README real-data run (each is NOISE: module doc); logger and message as logged.
MEASURED_NOISE = [
    ("absl", "ArtifactQuery.property_predicate is not supported."),
    ("tensorflow", "From /x/tensorflow_model_analysis/writers/metrics_plots_and_validations_writer.py:112: "
                   "tf_record_iterator (from tensorflow.python.lib.io.tf_record) is deprecated and will be removed "
                   "in a future version.\nInstructions for updating:\nUse eager execution and: \n"
                   "`tf.data.TFRecordDataset(path)`"),
    ("absl", "Not using the in-place Transform because the following features require analyzing: ('label',)"),
    ("absl", "Tables initialized inside a tf.function  will be re-initialized on every invocation of the "
             "function. This  re-initialization can have significant impact on performance. Consider lifting  "
             "them out of the graph context using  `tf.init_scope`.: label_ids/text_file_init/"
             "InitializeTableFromTextFileV2"),
    ("tensorflow", "SavedModel saved prior to TF 2.5 detected when loading Keras model. Please ensure that you are "
                   "saving the model with model.save() or tf.keras.models.save_model(), *NOT* "
                   "tf.saved_model.save(). To confirm, there should be a file named \"keras_metadata.pb\" in the "
                   "SavedModel directory."),
]


def test_the_measured_noise_goes_to_the_file_only_and_the_same_words_elsewhere_are_shown(tmp_path):
    log_file = str(tmp_path / "run.log")
    shown = io.StringIO()
    with console.run_output(log_file, verbose=False, stream=shown):
        for name, message in MEASURED_NOISE:
            logging.getLogger(name).warning("%s", message)
        logging.getLogger("tfx_image_finetune.trainer").warning("ArtifactQuery.property_predicate is not "
                                                                "supported.")  # another logger: shown
        logging.getLogger("absl").warning("Component %s: %s", "Trainer", "not using the GPU")
    assert shown.getvalue().splitlines() == ["WARNING: ArtifactQuery.property_predicate is not supported.",
                                             "WARNING: Component Trainer: not using the GPU"]
    logged = open(log_file).read()
    for name, message in MEASURED_NOISE:
        assert f"WARNING {name}: {message}" in logged


def test_progress_counts_up_without_a_total(tmp_path):
    shown, _ = _a_run(str(tmp_path / "run.log"), verbose=False)
    assert shown[:3] == ["[1] ImageFolderExampleGen ...", "[1] ImageFolderExampleGen: cached",
                         "[2] StatisticsGen ..."]


def test_the_progress_records_are_the_ones_tfx_and_beam_log():
    """The formats matched are the installed TFX's and Beam's own (read from their source, not imported)."""
    runner = open(os.path.join(TFX_ROOT, "orchestration", "local", "local_dag_runner.py")).read()
    launcher = open(os.path.join(TFX_ROOT, "orchestration", "portable", "launcher.py")).read()
    job_service = open(os.path.join(BEAM_ROOT, "runners", "portability", "local_job_service.py")).read()
    assert "from absl import logging" in runner and "from absl import logging" in launcher  # logger "absl"
    for fmt in (console.TFX_RUNNING, console.TFX_FINISHED, console.TFX_SKIPPED):
        assert f"logging.info('{fmt}', node_id)" in runner, fmt
    assert f"logging.info('{console.TFX_CACHED}', execution.id)" in launcher
    assert f"logging.error('{console.TFX_FAILED}', execution_info.execution_id)" in launcher
    assert f"'{console.BEAM_WORKER_FORMAT}'," in job_service
    resolver = open(os.path.join(TFX_ROOT, "orchestration", "portable", "input_resolution", "channel_resolver.py"))
    assert "if artifact_query.property_predicate:" in resolver.read()  # a message: always true (NOISE)


def test_absl_stays_at_info_when_tf_saves_and_restores_its_verbosity(tmp_path):
    """AutoTrackable._trackable_children (every SavedModel export) does exactly this; restored from absl's
    default it would leave the `absl` logger at WARNING and the records after the Trainer unmade."""
    log_file = str(tmp_path / "run.log")
    shown = io.StringIO()
    before = (absl_logging.get_verbosity(), logging.getLogger("absl").level)
    with console.run_output(log_file, verbose=False, stream=shown):
        _component("Trainer")
        saved = absl_logging.get_verbosity()
        absl_logging.set_verbosity(absl_logging.FATAL)
        absl_logging.set_verbosity(saved)
        _component("Evaluator")
    assert (absl_logging.get_verbosity(), logging.getLogger("absl").level) == before
    assert "Component Evaluator is finished." in open(log_file).read()
    assert shown.getvalue().splitlines()[-1].startswith("[2] Evaluator: ")


def test_every_setting_is_undone_on_the_way_out(tmp_path):
    root = logging.getLogger()
    console_handler = logging.StreamHandler(sys.stderr)  # what cli.main's basicConfig puts there
    root.addHandler(console_handler)
    saved_level, saved_stderr = root.level, sys.stderr
    tf_cpp = os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
    try:
        handlers = list(root.handlers)
        with console.run_output(str(tmp_path / "run.log"), verbose=False, stream=io.StringIO()):
            assert console_handler not in root.handlers  # no second, unfiltered console
            assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1" and root.level == logging.INFO
            assert getattr(logging, "_warnings_showwarning", None) is not None
        assert root.handlers == handlers and root.level == saved_level and sys.stderr is saved_stderr
        assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
        assert getattr(logging, "_warnings_showwarning", None) is None
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"  # one the user set is kept
        with console.run_output(str(tmp_path / "run2.log"), verbose=False, stream=io.StringIO()):
            assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    finally:
        root.removeHandler(console_handler)
        os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
        if tf_cpp is not None:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = tf_cpp


FD2_SCRIPT = textwrap.dedent("""
    import logging, os, subprocess, sys
    from absl import logging as absl_logging
    from tfx_image_finetune.local import console

    with console.run_output(sys.argv[1], verbose=sys.argv[2] == "verbose"):
        absl_logging.info(console.TFX_RUNNING, "Transform")
        # TF's C++ logging in this process, and what a Beam worker (a child process) writes to its fd 2
        os.write(2, b"2026-12-02 08:28:17.485725: E external/local_xla/xla/stream_executor/cuda/cuda_fft.cc:479] "
                    b"Unable to register cuFFT factory: Attempting to register factory for plugin cuFFT\\n")
        subprocess.run([sys.executable, "-c", "import os; os.write(2, b'W tensorflow/compiler/tf2tensorrt/utils/"
                        "py_utils.cc:38] TF-TRT Warning: Could not find TensorRT\\\\n'); "
                        "os.write(2, b'E worker: a C++ error that matters\\\\n'); print('worker stdout')"])
        os.write(2, b"2026-12-02 08:53:07.581594: W tensorflow/core/framework/local_rendezvous.cc:404] Local "
                    b"rendezvous is aborting with status: OUT_OF_RANGE: End of sequence\\n")
        print("Epoch 1/1", flush=True)  # Keras' epoch lines: stdout, untouched
        sys.stderr.write("written by Python to sys.stderr\\n")
        absl_logging.info(console.TFX_FINISHED, "Transform")
    sys.stderr.write("after the run\\n")
""")


@pytest.mark.parametrize("mode", ["quiet", "verbose"])
def test_fd2_of_the_process_and_its_workers_reaches_the_log_and_only_what_matters_the_console(tmp_path, mode):
    log_file = str(tmp_path / "run.log")
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    done = subprocess.run([sys.executable, "-c", FD2_SCRIPT, log_file, mode], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    err, logged = done.stderr.splitlines(), open(log_file).read()
    assert done.stdout.splitlines() == ["worker stdout", "Epoch 1/1"]
    assert "E worker: a C++ error that matters" in err
    assert "written by Python to sys.stderr" in err and err[-1] == "after the run"
    if mode == "quiet":
        # The filter is a process of its own: a line it passes on may reach the console after a later direct
        # write (a progress line), but before the run's context ends (the filter is drained on the way out).
        direct = [line for line in err if line != "E worker: a C++ error that matters"]
        assert direct[0] == "[1] Transform ..." and direct[-2].startswith("[1] Transform: "), err
        assert not [line for line in err if "cuFFT" in line or "TensorRT" in line or "rendezvous" in line], err
        for text in ("[fd 2] 2026-12-02 08:28:17.485725: E", "Unable to register cuFFT factory",
                     "[fd 2] W tensorflow/compiler/tf2tensorrt", "[fd 2] E worker: a C++ error that matters",
                     "OUT_OF_RANGE: End of sequence",
                     "INFO absl: Component Transform is finished."):
            assert text in logged, text
    else:
        assert any("cuFFT" in line for line in err) and any("TensorRT" in line for line in err)
        assert any("INFO absl: Component Transform is running." in line for line in err)
        assert "[fd 2]" not in logged


def test_a_run_ends_with_where_its_log_is(tmp_path, capsys):
    from tfx_image_finetune.config import PipelineConfig

    cfg = PipelineConfig()
    cfg.runtime.output_dir = str(tmp_path)

    def runner(cfg):
        _component("StatisticsGen")
        logging.getLogger("tfx_image_finetune").info("an INFO record")

    def after(cfg):
        print("Model BLESSED")
        return 0

    assert run_guard.run(cfg, runner, after) == 0
    out, err = capsys.readouterr()
    log_file = os.path.join(tmp_path, "logs", os.listdir(os.path.join(tmp_path, "logs"))[0])
    assert out.splitlines() == ["Model BLESSED", f"Log: {log_file}"]
    assert err.splitlines()[0] == "[1] StatisticsGen ..." and len(err.splitlines()) == 2, err
    assert "an INFO record" in open(log_file).read()

    def failing(cfg):
        _component("Trainer", failed=True)
        raise RuntimeError("out of memory")

    assert run_guard.run(cfg, failing, after) == run_guard.EXIT_FAILED
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == "" and lines[0] == "[1] Trainer ..." and lines[1].startswith("[1] Trainer: failed after ")
    assert lines[2] == "tfx-image-finetune: error: RuntimeError: out of memory"
    assert lines[3].startswith("tfx-image-finetune: full traceback in ") and len(lines) == 4
