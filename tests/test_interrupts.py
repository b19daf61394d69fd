"""Ctrl-C and SIGTERM during a real `tfx-image-finetune run`: one line, exit 130/143, MLMD and folders clean,
and the rerun resumes from the cached steps; a run killed with SIGKILL is cleaned up by the next one."""

import glob
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from tfx_image_finetune.local import demo_data
from tests.conftest import last_states

pytestmark = pytest.mark.e2e  # CLI `run`s, interrupted and resumed

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _flags(data, out, head_epochs, beam_mode="in_memory"):
    return ["run", "--data", data, "--output", out, "--backbone", "mobilenet_v2", "--alpha", "0.35",
            "--image-size", "64", "--weights", "none", "--head-epochs", str(head_epochs), "--finetune-epochs", "0",
            "--batch-size", "4", "--accuracy-threshold", "0", "--beam-mode", beam_mode, "--no-servable-check",
            "--feature-views", "0"]  # phase 1 on images: 500 epochs keep the Trainer busy for the signal


def _run_until(args, marker, signum, timeout=420, group=False, after_signal=None):
    """Runs the CLI; once `marker` appears in its output, sends `signum` (to its whole process group, as a
    terminal's Ctrl-C does, if `group`), then calls `after_signal(the CLI's psutil.Process, its children before
    the signal)`. Returns (exit code, output)."""
    proc = subprocess.Popen([sys.executable, "-m", "tfx_image_finetune.cli.main"] + args, cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    lines, seen = [], threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if marker and marker in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if marker:
        assert seen.wait(timeout), "".join(lines[-40:])
        time.sleep(2)
        cli = psutil.Process(proc.pid)
        children = cli.children(recursive=True)
        os.killpg(proc.pid, signum) if group else proc.send_signal(signum)
        if after_signal:
            after_signal(cli, children)
    code = proc.wait(timeout=timeout)
    reader.join(10)
    return code, "".join(lines)


def _check_clean(cfg_out, node, pipeline_name="tfx-image-finetune"):
    metadata = os.path.join(cfg_out, "metadata.sqlite")
    states = last_states(metadata, pipeline_name)
    assert states[node] in ("FAILED", "CANCELED"), states
    assert not [n for n, s in states.items() if s in ("RUNNING", "NEW")], states
    outputs = glob.glob(os.path.join(cfg_out, "pipeline_root", node, "*", "*"))
    assert not [p for p in outputs if os.path.basename(os.path.dirname(p)) != "ingest_reports"], \
        f"partial {node} output left behind: {outputs}"
    assert glob.glob(os.path.join(cfg_out, "logs", "run-*.log"))
    return states


def _only_complete_outputs(out):
    """Every output folder on disk (<node>/<key>/<execution id>, temporary ones too) is a COMPLETE execution's."""
    from tfx_image_finetune.metadata_store import State, store

    complete = {e.id for e in store(os.path.join(out, "metadata.sqlite")).get_executions()
                if e.last_known_state == State.COMPLETE}
    folders = glob.glob(os.path.join(out, "pipeline_root", "*", "*", "*")) + glob.glob(
        os.path.join(out, "pipeline_root", "*", ".system", "executor_execution", "*"))
    ids = {int(os.path.basename(p)) for p in folders if os.path.basename(p).isdigit()}
    assert ids and ids <= complete, (sorted(ids - complete), sorted(complete))


def test_interrupted_runs_are_recorded_cleaned_and_resumed(tmp_path):
    data = str(tmp_path / "data")
    demo_data.generate(data, per_class=20, size=64)
    out = str(tmp_path / "out")

    # Ctrl-C while ExampleGen's Beam workers run (multi-processing): the terminal signals the whole group.
    code, output = _run_until(_flags(data, out, 500, "multi_processing") + ["--verbose"], "Worker: severity", signal.SIGINT,
                              group=True)
    assert code == 130, output[-3000:]
    last = output.strip().splitlines()[-1]
    assert "interrupted by SIGINT during ImageFolderExampleGen" in last and "rerun to resume" in last, last
    assert "Traceback" not in output and "KeyboardInterrupt" not in output
    _check_clean(out, "ImageFolderExampleGen")

    # SIGTERM while the Trainer trains. (The same Beam mode in every run after this one: Beam args are part of
    # TFX's cache key.)
    code, output = _run_until(_flags(data, out, 500, "multi_processing"), "Epoch 1/", signal.SIGTERM)
    assert code == 143, output[-3000:]
    last = output.strip().splitlines()[-1]
    assert "interrupted by SIGTERM during Trainer" in last, last
    assert "Traceback" not in output
    states = _check_clean(out, "Trainer")
    assert states["ImageFolderExampleGen"] == "COMPLETE" and states["Transform"] == "COMPLETE", states

    # SIGKILL to the CLI during training (`kill -9`, a closed terminal): the run's process and its workers die
    # with it, and the lock is free again; MLMD still says RUNNING, and the next run cleans that up.
    def all_gone(cli, children):
        assert children, "the run has its own process"
        gone, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, alive

    code, output = _run_until(_flags(data, out, 500, "multi_processing"), "Epoch 1/", signal.SIGKILL,
                              after_signal=all_gone)
    assert code == -signal.SIGKILL
    assert last_states(os.path.join(out, "metadata.sqlite"), "tfx-image-finetune")["Trainer"] == "RUNNING"

    # To the end, with Beam workers in processes: no TF shutdown noise, no nan metric.
    code, output = _run_until(_flags(data, out, 1, "multi_processing"), None, None)
    assert code == 0, output[-3000:]
    assert "an earlier run was killed during Trainer" in output, output[:3000]
    _only_complete_outputs(out)
    states = last_states(os.path.join(out, "metadata.sqlite"), "tfx-image-finetune")
    assert states["ImageFolderExampleGen"] == "CACHED" and states["StatisticsGen"] == "CACHED", states
    assert states["Trainer"] == "COMPLETE" and states["Pusher"] == "COMPLETE", states
    assert "Model BLESSED" in output and "Ingested train:" in output
    assert "Exception ignored" not in output and "=nan" not in output
