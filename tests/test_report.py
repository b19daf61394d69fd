"""The run report of the e2e `first_run`, looked at as a person would: in real headless Chromium.

The page must load every image (each data URI decodes, and the browser reports them all loaded), raise no
JavaScript error, render to a non-blank screenshot, and show the Evaluator's and the history's own numbers.
"""

import base64
import html
import io
import json
import os
import re
import shutil
import subprocess

import pytest
import tensorflow as tf
from PIL import Image

from tfx_image_finetune.report import evaluation
from tfx_image_finetune.report import run_report as report
from tfx_image_finetune.report import run_summary as md
from tfx_image_finetune.serving_contract import versions
from tests.conftest import copy_of_run

pytestmark = pytest.mark.e2e  # the shared first_run's report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=5000"]


@pytest.fixture(scope="module")
def page(first_run):
    path = os.path.join(first_run.runtime.output_dir, report.REPORT_FILE)
    assert os.path.isfile(path), "the local run writes <output>/report.html"
    return path, open(path, encoding="utf-8").read()


def _attrs(text, name):
    return [html.unescape(v) for v in re.findall(rf'{name}="([^"]*)"', text)]


def test_every_image_is_an_embedded_png_or_jpeg(page):
    _, text = page
    sources = re.findall(r'<img [^>]*src="([^"]+)"', text)
    assert len(sources) >= 5  # data, curves, confusion matrix, seconds, gallery
    for src in sources:
        assert src.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")), src[:40]
        image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        image.load()
        assert image.format in ("PNG", "JPEG") and min(image.size) > 10
    assert "http://" not in text and "https://" not in text  # self-contained: nothing fetched


def test_the_numbers_are_the_evaluators_and_the_historys(first_run, page):
    _, text = page
    metrics = md.eval_metrics(first_run.metadata_path)
    shown = dict(zip(_attrs(text, "data-metric"), map(float, _attrs(text, "data-value"))))
    assert shown == metrics
    assert _attrs(text, "data-blessed") == [str(md.blessed(first_run.metadata_path)).lower()]
    history = json.load(open(tf.io.gfile.glob(os.path.join(first_run.pipeline_root,
                                                           "Trainer/model_run/*/history.json"))[0]))
    rows = re.findall(r'<tr[^>]*data-epoch="(\d+)" data-phase="(\d)"[^>]*data-loss="([^"]+)"[^>]*'
                      r'data-val-accuracy="([^"]+)"', text)
    assert [(int(e), int(p), float(l), float(a)) for e, p, l, a in rows] == [
        (r["epoch"], r["phase"], r["loss"], r["val_accuracy"]) for r in history["epochs"]]
    assert _attrs(text, "data-best-epoch") == [str(history["best_epoch"])]
    decision = history["strategy"]
    assert _attrs(text, "data-strategy") == [str(decision["used"])] and decision["probe_accuracy"] is not None
    # Per class: the confusion matrix covers every test example the Evaluator counted.
    matrix = json.loads(_attrs(text, "data-matrix")[0])
    assert sum(map(sum, matrix)) == metrics["example_count"]
    assert len(matrix) == len(history["classes"])
    assert md.blessed(first_run.metadata_path)
    assert _attrs(text, "data-pushed-version") == [str(versions(first_run.serving_model_dir)[-1])]


def test_the_counts_per_split_and_class_are_the_examples_and_the_matrix_is_tfmas(first_run, page):
    """The data table counts what ExampleGen wrote (read back here from the Examples' own records), and the
    confusion matrix is the Evaluator's: its diagonal over the test split is TFMA's accuracy."""
    _, text = page
    shown = {}
    for split, cls, count in re.findall(r'data-split="([^"]+)" data-class="([^"]+)" data-count="(\d+)"', text):
        shown.setdefault(html.unescape(split), {})[html.unescape(cls)] = int(count)
    written = {}
    for path in tf.io.gfile.glob(os.path.join(first_run.pipeline_root, "ImageFolderExampleGen/examples/*/Split-*/*.gz")):
        split = os.path.basename(os.path.dirname(path))[len("Split-"):]
        for record in tf.data.TFRecordDataset(path, compression_type="GZIP"):
            label = tf.train.Example.FromString(record.numpy()).features.feature["label"].bytes_list.value[0].decode()
            written.setdefault(split, {}).setdefault(label, 0)
            written[split][label] += 1
    assert shown == written
    matrix = json.loads(_attrs(text, "data-matrix")[0])
    metrics = md.eval_metrics(first_run.metadata_path)
    assert sum(matrix[i][i] for i in range(len(matrix))) / sum(map(sum, matrix)) == pytest.approx(
        metrics["binary_accuracy"])


@pytest.mark.slow  # a headless browser
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (.ci/run installs it)")
def test_chromium_renders_it_with_every_image_loaded_and_no_error(page, tmp_path):
    path, _ = page
    url = "file://" + os.path.abspath(path)
    shot = tmp_path / "report.png"
    run = subprocess.run([CHROMIUM, *FLAGS, "--enable-logging=stderr", "--v=0", f"--screenshot={shot}",
                          "--window-size=1200,3000", url], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    image = Image.open(shot).convert("L")
    assert image.size == (1200, 3000)
    histogram = image.histogram()
    assert max(histogram) < 0.9 * sum(histogram)  # not one blank colour
    dom = subprocess.run([CHROMIUM, *FLAGS, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    loaded = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom)
    assert loaded, "the page's load script did not run"
    assert loaded.group(1) == loaded.group(2) and int(loaded.group(2)) >= 5, loaded.group(0)
    shutil.copy(shot, os.path.join(os.path.dirname(path), "report_screenshot.png"))  # to look at


def test_wrong_and_right_test_images_are_shown_beside_their_heat_maps(page):
    """The most confidently wrong images and the most confidently right ones per class, each with the overlay of
    what drove its predicted class (trainer/explain.py; its own test checks where the heat goes)."""
    _, text = page
    matrix = json.loads(_attrs(text, "data-matrix")[0])
    figures = re.findall(r'<figure class="([^"]*)" data-true="([^"]*)" data-predicted="([^"]*)" '
                         r'data-explained="([^"]*)">(.*?)</figure>', text)
    right = [f for f in figures if f[1] == f[2]]
    assert len(right) == sum(min(report.RIGHT_PER_CLASS, matrix[c][c]) for c in range(len(matrix))) > 0
    assert len(figures) - len(right) == min(report.GALLERY_SIZE, sum(map(sum, matrix)) - sum(
        matrix[c][c] for c in range(len(matrix))))
    for cls, _, _, explained, inner in figures:
        assert (cls, explained) == ("pair", "true")
        overlay = re.search(r'<img class="thumb overlay" alt="[^"]*" src="data:image/png;base64,([^"]+)"', inner)
        image = Image.open(io.BytesIO(base64.b64decode(overlay.group(1))))
        assert image.format == "PNG" and image.size == (96, 96)  # the model's input size (small_config)
    assert "No heat maps" not in text


def test_the_report_subcommand_rerenders_the_latest(first_run, tmp_path, capsys):
    from tfx_image_finetune.cli.main import main

    run = copy_of_run(first_run, str(tmp_path / "run"))  # the shared run is only read (other processes read it)
    latest = os.path.join(run.runtime.output_dir, report.REPORT_FILE)
    os.remove(latest)
    assert main(["report", run.runtime.output_dir]) == 0
    out = capsys.readouterr().out
    assert os.path.isfile(latest) and "Report: " in out and "/reports/" in out
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(run.runtime.output_dir) + "-missing"])
    assert exit_.value.code == 1 and "no pipeline metadata" in capsys.readouterr().err


def _evaluation(folder, with_baseline):
    """An Evaluator output folder in TFMA's own format: eval_config.json holding the pipeline's EvalConfig with
    the defaults TFX's Evaluator applies (`has_baseline`: a baseline ModelSpec, or none on a first run), and
    the overall slice's metrics as MetricsForSlice records, and a passed ValidationResult."""
    import tensorflow_model_analysis as tfma
    from google.protobuf import json_format
    from tensorflow_model_analysis.proto import config_pb2, metrics_for_slice_pb2, validation_result_pb2

    from tfx_image_finetune.config import PipelineConfig
    from tfx_image_finetune.pipeline.pipeline import eval_config

    config = tfma.utils.update_eval_config_with_defaults(eval_config(PipelineConfig(), 2),
                                                         has_baseline=with_baseline, rubber_stamp=True)
    os.makedirs(folder)
    run = config_pb2.EvalRun(eval_config=config, version=tfma.version.VERSION, data_location=str(folder),
                             file_format="tfrecords",
                             model_locations={spec.name: str(folder) for spec in config.model_specs})
    with open(os.path.join(folder, "eval_config.json"), "w") as f:
        f.write(json_format.MessageToJson(run))
    metrics = metrics_for_slice_pb2.MetricsForSlice(slice_key=metrics_for_slice_pb2.SliceKey())
    candidate = next(spec.name for spec in config.model_specs if not spec.is_baseline)
    values = [(spec.name, False, 0.8 if spec.is_baseline else 0.9) for spec in config.model_specs]
    for model_name, is_diff, value in values + ([(candidate, True, 0.1)] if with_baseline else []):
        kv = metrics.metric_keys_and_values.add()
        kv.key.name, kv.key.model_name, kv.key.is_diff = "binary_accuracy", model_name, is_diff
        kv.value.double_value.value = value
    with tf.io.TFRecordWriter(os.path.join(folder, "metrics-00000-of-00001.tfrecord")) as writer:
        writer.write(metrics.SerializeToString())
    with tf.io.TFRecordWriter(os.path.join(folder, "validations-00000-of-00001.tfrecord")) as writer:
        writer.write(validation_result_pb2.ValidationResult(validation_ok=True).SerializeToString())
    return str(folder)


def test_the_baseline_metrics_are_asked_for_only_when_the_evaluation_had_a_baseline(tmp_path, caplog):
    """A first run (no baseline) logged TFMA's 'Fail to find metrics for model name: baseline' warning."""
    caplog.set_level("WARNING")
    first = evaluation.read(_evaluation(tmp_path / "first", with_baseline=False))
    assert first["metrics"] == {"binary_accuracy": 0.9} and first["baseline_metrics"] == {}
    assert "Fail to find metrics" not in caplog.text, caplog.text
    later = evaluation.read(_evaluation(tmp_path / "later", with_baseline=True))
    assert later["metrics"]["binary_accuracy"] == 0.9 and later["baseline_metrics"] == {"binary_accuracy": 0.8}
    assert "Fail to find metrics" not in caplog.text, caplog.text
