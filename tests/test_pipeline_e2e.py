"""The real LocalDagRunner over small generated data: artifacts, push, blessing gate, caching."""

import html
import json
import math
import os
import re

import pytest
import tensorflow as tf

from tfx_image_finetune.cli import main as cli
from tfx_image_finetune.report import run_summary as md
from tfx_image_finetune.local.output_lock import output_lock
from tests.conftest import MOBILENET_WEIGHTS, cli_subprocess, color_classes, copy_of_run, small_config, last_states
from tfx_image_finetune.serving_contract import versions

COMPONENTS = [
    "ImageFolderExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "ValidationGate",
    "Transform", "TrainingHyperparameters", "Trainer", "latest_blessed_model_resolver", "Evaluator", "Pusher",
    "TFLiteGate",  # first_run exports --tflite float
]


def _images(folder: str, n: int):
    return [open(os.path.join(folder, cls, name), "rb").read()
            for cls in ("night", "sunny") for name in sorted(os.listdir(os.path.join(folder, cls)))[:n]]


def _serialized_examples(images):
    return [tf.train.Example(features=tf.train.Features(feature={
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))})).SerializeToString()
        for data in images]


@pytest.mark.e2e
def test_every_component_ran_and_wrote_its_artifacts(first_run, first_run_log):
    cfg = first_run
    states = last_states(cfg.metadata_path, cfg.runtime.pipeline_name)
    assert set(states) == set(COMPONENTS)
    assert all(state == "COMPLETE" for state in states.values()), states
    seconds = md.execution_seconds(cfg.metadata_path)
    assert seconds["Trainer"] > 1 and set(seconds) >= {"Trainer", "Transform", "Evaluator", "Pusher"}
    root = cfg.pipeline_root
    for path in [
        "ImageFolderExampleGen/examples/*/Split-train/*.gz",
        "ImageFolderExampleGen/examples/*/Split-selection/*.gz",
        "ImageFolderExampleGen/examples/*/Split-test/*.gz",
        "ImageFolderExampleGen/ingest_report/*/report.json",
        "StatisticsGen/statistics/*/Split-train/FeatureStats.pb",
        "ImportSchemaGen/schema/*/schema.pbtxt",
        "ExampleValidator/anomalies/*/Split-test/SchemaDiff.pb",
        "Transform/transform_graph/*/transform_fn/saved_model.pb",
        "Transform/transform_graph/*/transform_fn/assets/label_vocab",
        "Trainer/model/*/Format-Serving/saved_model.pb",
        "Trainer/model_run/*/history.json",
        "Evaluator/evaluation/*/metrics*",
        "Evaluator/blessing/*/BLESSED",
        "Pusher/pushed_model/*/saved_model.pb",
    ]:
        assert tf.io.gfile.glob(os.path.join(root, path)), f"missing {path}"
    history = json.load(open(tf.io.gfile.glob(os.path.join(root, "Trainer/model_run/*/history.json"))[0]))
    assert [row["phase"] for row in history["epochs"]] == [1, 2]
    assert [row["epoch"] for row in history["epochs"]] == [1, 2]  # the epoch count continues
    assert history["epochs"][1]["trainable_params"] > history["epochs"][0]["trainable_params"]
    assert history["classes"] == ["night", "sunny"]  # sorted names are the class ids
    assert set(history["train_examples_per_class"]) == {"night", "sunny"}
    # ... as ExampleGen counted them (its ingest report), not by a pass of the Trainer's own over the TFRecords
    ingest = json.load(open(tf.io.gfile.glob(os.path.join(root, "ImageFolderExampleGen/ingest_report/*/report.json"))[0]))
    assert history["train_examples_per_class"] == ingest["examples_per_split"]["train"]
    # Small data, so the logistic head: once the selection split chose its penalty it joined the training
    both = sum(ingest["examples_per_split"]["train"].values()) + sum(ingest["examples_per_split"]["selection"].values())
    assert history["refit"] and history["epochs"][1]["steps"] == math.ceil(both / cfg.training.batch_size)
    trainer_log = [m for m in first_run_log if m.startswith("tfx_image_finetune.trainer.task: ")]
    assert [m for m in trainer_log if "training examples per class" in m]  # its lines are recorded ...
    assert not [m for m in trainer_log if "no ingest report counts" in m]  # ... and it did not count
    assert tf.io.gfile.glob(os.path.join(root, "Trainer/model_run/*/train/events.out.tfevents.*"))
    # The Evaluator blessed on the test split, which neither trained nor selected the model.
    assert md.eval_metrics(cfg.metadata_path)["example_count"] == _count(root, "ImageFolderExampleGen", "test")
    assert md.baseline(cfg.metadata_path).startswith("none: no blessed model of this task")
    # Beam ran on the pinned runner: no attempt to download or start Prism.
    beam = [m for m in first_run_log if m.startswith("apache_beam")]
    assert beam and not [m for m in beam if "prism" in m.lower()], [m for m in beam if "prism" in m.lower()][:3]


def _count(root, component, split):
    files = tf.io.gfile.glob(os.path.join(root, component, "examples", "*", f"Split-{split}", "*.gz"))
    return sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP"))


@pytest.mark.e2e
def test_blessed_run_pushes_a_servable_version(first_run, demo_images):
    cfg = first_run
    assert md.blessed(cfg.metadata_path)
    pushed = versions(cfg.serving_model_dir)
    assert len(pushed) == 1
    version_dir = os.path.join(cfg.serving_model_dir, str(pushed[0]))
    loaded = tf.saved_model.load(version_dir)
    assert {"serving_default", "serving_examples", "transform_features", "evaluation"} <= set(loaded.signatures)
    images = _images(demo_images, 3)
    out = loaded.signatures["serving_examples"](examples=tf.constant(_serialized_examples(images)))
    raw = loaded.signatures["serving_default"](image_bytes=tf.constant(images))
    for key in ("probabilities", "class_ids", "classes"):
        assert (raw[key].numpy() == out[key].numpy()).all() if key != "probabilities" else \
            abs(raw[key].numpy() - out[key].numpy()).max() < 1e-5
    probs = out["probabilities"].numpy()
    assert probs.shape == (6, 2)
    assert ((probs >= 0) & (probs <= 1)).all()
    assert abs(probs.sum(axis=1) - 1).max() < 1e-5
    assert set(out["classes"].numpy().astype(str)) <= {"night", "sunny"}
    assert (out["class_ids"].numpy() == probs.argmax(axis=1)).all()
    extra = os.path.join(version_dir, "assets.extra")
    labels = open(os.path.join(extra, "labels.txt")).read().split()
    assert sorted(labels) == ["night", "sunny"]
    assert [labels[i] for i in out["class_ids"].numpy()] == list(out["classes"].numpy().astype(str))
    summary = json.load(open(os.path.join(extra, "training_summary.json")))
    assert summary["config"]["model"]["backbone"] == "mobilenet_v2" and summary["history"]["epochs"]
    warmup = list(tf.data.TFRecordDataset(os.path.join(extra, "tf_serving_warmup_requests")))
    assert len(warmup) == 5
    from tensorflow_serving.apis import prediction_log_pb2

    request = prediction_log_pb2.PredictionLog.FromString(warmup[0].numpy()).predict_log.request
    assert request.model_spec.signature_name == "serving_default" and "image_bytes" in request.inputs
    with pytest.raises(tf.errors.InvalidArgumentError, match="Unknown image file format"):
        loaded.signatures["serving_default"](image_bytes=tf.constant([b"not an image"]))
    # TFMA's label comes through transform_features: a label the model does not know is named, not -1.
    unknown = tf.train.Example(features=tf.train.Features(feature={
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[images[0]])),
        "label": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"zebra"]))})).SerializeToString()
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"(?s)not among the classes of the model.*zebra"):
        loaded.signatures["transform_features"](examples=tf.constant([unknown]))
    # --tflite float: judged on the test split, passed, and pushed with the version; the closing line says where.
    lite = md.tflite_evaluation(cfg.metadata_path)
    assert lite["passed"] and lite["examples"] == _count(cfg.pipeline_root, "ImageFolderExampleGen", "test")
    assert lite["agreement"] >= 0.95 and lite["tflite_bytes"] > 0
    assert sorted(os.listdir(os.path.join(version_dir, "tflite"))) == ["labels.txt", "model.tflite"]
    assert open(os.path.join(version_dir, "tflite", "labels.txt")).read().split() == labels
    assert f"pushed: {os.path.join(version_dir, 'tflite', 'model.tflite')}" in md.describe(
        cfg.metadata_path, cfg.serving_model_dir)


@pytest.mark.e2e
def test_rerun_reuses_cached_steps_and_an_unreachable_threshold_pushes_nothing(first_run, tmp_path, capfd):
    cfg = copy_of_run(first_run, str(tmp_path / "rerun"))  # the session's other tests keep the original
    before = versions(cfg.serving_model_dir)
    assert cli._run(cfg) == cli.EXIT_OK
    closing = capfd.readouterr().out
    assert "Ingest report: " in closing and "Model BLESSED" in closing
    states = last_states(cfg.metadata_path, cfg.runtime.pipeline_name)
    assert states["ImageFolderExampleGen"] == "CACHED"
    assert states["Transform"] == "CACHED"
    assert states["Trainer"] == "CACHED"
    # The Evaluator re-blesses the same model (now against itself as baseline); it is not pushed again.
    assert versions(cfg.serving_model_dir) == before
    assert "Trainer/model/" in md.baseline(cfg.metadata_path)

    # A training change retrains without re-running the data steps (Transform sees only its own settings),
    # and a model that must beat the last blessed one by 1.0 (the whole accuracy scale) is not blessed.
    cfg.training.finetune_epochs = 2
    cfg.model.tflite = "none"  # (the TFLite export is tested on the first run)
    cfg.eval.accuracy_threshold = 1.0
    cfg.eval.max_accuracy_drop = -1.0
    assert cli._run(cfg) == cli.EXIT_NOT_BLESSED  # the verdict is in the exit code
    states = last_states(cfg.metadata_path, cfg.runtime.pipeline_name)
    for step in ("ImageFolderExampleGen", "StatisticsGen", "Transform"):
        assert states[step] == "CACHED", (step, states[step])
    assert states["Trainer"] == "COMPLETE" and states["Evaluator"] == "COMPLETE"
    assert not md.blessed(cfg.metadata_path)
    assert versions(cfg.serving_model_dir) == before


@pytest.mark.e2e
@pytest.mark.skipif(not os.path.isfile(MOBILENET_WEIGHTS), reason="needs the ImageNet MobileNetV2 weights in ../shared")
def test_a_new_class_list_in_the_same_output_is_a_new_task(first_run, tmp_path, capfd):
    """Three classes after two in the same --output: no crash against the old model, multi-class metrics,
    judged on the value threshold alone, every class served; then the two-class task is compared with its own
    last blessed model again. (ImageNet features: a random-init backbone's
    cannot tell these colours apart in a few epochs, and the threshold must mean something.)"""
    cfg = copy_of_run(first_run, str(tmp_path / "out"))
    data = color_classes(str(tmp_path / "rgb"), {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220)},
                         per_class=30)
    new = small_config(cfg.runtime.output_dir, data)
    new.model.image_size, new.model.weights = 64, MOBILENET_WEIGHTS
    new.training.head_epochs, new.training.feature_views = 3, 2  # phase 1 on cached features, through run_fn
    new.eval.accuracy_threshold = 0.6  # chance is 1/3
    before = versions(new.serving_model_dir)
    assert cli._run(new) == cli.EXIT_OK
    metrics = md.eval_metrics(new.metadata_path)
    assert "sparse_categorical_accuracy" in metrics and "binary_accuracy" not in metrics
    assert metrics["sparse_categorical_accuracy"] >= 0.6
    assert md.blessed(new.metadata_path)
    note = md.baseline(new.metadata_path)
    assert note.startswith("none: no blessed model of this task")  # the two-class model is not its baseline
    out = capfd.readouterr().out
    assert "Baseline: none:" in out
    assert f"Report: {os.path.abspath(new.runtime.output_dir)}/reports/" in out
    pushed = versions(new.serving_model_dir)
    assert len(pushed) == len(before) + 1
    loaded = tf.saved_model.load(os.path.join(new.serving_model_dir, str(pushed[-1])))
    images = [open(os.path.join(data, c, "000.png"), "rb").read() for c in ("blue", "green", "red")]
    out = loaded.signatures["serving_default"](image_bytes=tf.constant(images))
    assert out["probabilities"].shape == (3, 3)
    labels = open(os.path.join(new.serving_model_dir, str(pushed[-1]), "assets.extra", "labels.txt")).read().split()
    assert labels == ["blue", "green", "red"]
    assert sorted(out["classes"].numpy().astype(str)) == ["blue", "green", "red"]
    # The run's report covers the new task: a 3 x 3 confusion matrix over the test examples.
    page = open(os.path.join(new.runtime.output_dir, "report.html")).read()
    matrix = json.loads(html.unescape(re.search(r'data-matrix="([^"]+)"', page).group(1)))
    assert len(matrix) == 3 and sum(map(sum, matrix)) == metrics["example_count"]

    # Back to the first task (a training change, so a new model): its baseline is the first run's blessed
    # model, not the latest blessed one (the three-class model); --warm-start starts from that model's weights:
    # before any training it scores the first run's best selection loss (the same selection examples).
    first_model = md.latest_artifact_uri(first_run.metadata_path, "Model")
    first_history = json.load(open(os.path.join(md.latest_artifact_uri(first_run.metadata_path, "ModelRun"),
                                                 "history.json")))
    again = small_config(cfg.runtime.output_dir, first_run.data.path)
    again.training.finetune_epochs, again.training.warm_start = 2, True
    cli._run(again)
    assert md.baseline(again.metadata_path) == first_model
    history = json.load(open(os.path.join(md.latest_artifact_uri(again.metadata_path, "ModelRun"), "history.json")))
    assert history["warm_start"]["used"] and history["warm_start"]["from"].startswith(first_model)
    assert history["warm_start"]["initial_val_loss"] == pytest.approx(first_history["best_val_loss"], rel=1e-4)


# Not e2e: the run is refused before anything runs.
def test_a_second_run_on_a_busy_output_fails_at_once_naming_the_first(tmp_path, demo_images):
    out = str(tmp_path / "busy")
    with output_lock(out):
        proc, imported = cli_subprocess("run", "--data", demo_images, "--weights", "none", "--output", out)
    assert proc.returncode == cli.EXIT_FAILED
    assert "is in use by a running pipeline" in proc.stderr and f"pid {os.getpid()}" in proc.stderr
    assert imported == [], imported  # refused before TF/TFX are imported
    assert not os.path.exists(os.path.join(out, "metadata.sqlite"))
