"""The real LocalDagRunner over small generated data: artifacts, push, blessing gate, caching."""

import json
import os

import pytest
import tensorflow as tf

from pipeline import local_runner
from pipeline.configs import PipelineConfig
from pipeline import run_summary as md

COMPONENTS = [
    "ImageFolderExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "ValidationGate",
    "Transform", "TrainingHyperparameters", "Trainer", "latest_blessed_model_resolver", "Evaluator", "Pusher",
]


def small_config(output_dir: str, data: str) -> PipelineConfig:
    cfg = PipelineConfig()
    cfg.data.path = data
    cfg.model.backbone, cfg.model.alpha, cfg.model.image_size, cfg.model.weights = "mobilenet_v2", 0.35, 96, "none"
    cfg.training.head_epochs, cfg.training.finetune_epochs = 1, 1
    cfg.eval.accuracy_threshold = 0.0
    cfg.runtime.output_dir = output_dir
    return cfg


@pytest.fixture(scope="module")
def first_run(demo_images, tmp_path_factory):
    cfg = small_config(str(tmp_path_factory.mktemp("e2e")), demo_images)
    local_runner.run(cfg)
    return cfg


def _serialized_examples(folder: str, n: int):
    out = []
    for cls in ("night", "sunny"):
        for name in sorted(os.listdir(os.path.join(folder, cls)))[:n]:
            data = open(os.path.join(folder, cls, name), "rb").read()
            feature = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))}
            out.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return out


def test_every_component_ran_and_wrote_its_artifacts(first_run):
    cfg = first_run
    states = md.last_states(cfg.metadata_path, cfg.runtime.pipeline_name)
    assert set(states) == set(COMPONENTS)
    assert all(state == "COMPLETE" for state in states.values()), states
    root = cfg.pipeline_root
    for path in [
        "ImageFolderExampleGen/examples/*/Split-train/*.gz",
        "ImageFolderExampleGen/examples/*/Split-eval/*.gz",
        "ImageFolderExampleGen/ingest_report/*/report.json",
        "StatisticsGen/statistics/*/Split-train/FeatureStats.pb",
        "ImportSchemaGen/schema/*/schema.pbtxt",
        "ExampleValidator/anomalies/*/Split-eval/SchemaDiff.pb",
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
    assert sorted(history["classes"]) == ["night", "sunny"]
    assert tf.io.gfile.glob(os.path.join(root, "Trainer/model_run/*/train/events.out.tfevents.*"))


def test_blessed_run_pushes_a_servable_version(first_run, demo_images):
    cfg = first_run
    assert md.blessed(cfg.metadata_path)
    versions = md.pushed_versions(cfg.serving_model_dir)
    assert len(versions) == 1 and versions[0].isdigit()
    loaded = tf.saved_model.load(os.path.join(cfg.serving_model_dir, versions[0]))
    assert {"serving_default", "transform_features", "evaluation"} <= set(loaded.signatures)
    out = loaded.signatures["serving_default"](examples=tf.constant(_serialized_examples(demo_images, 3)))
    probs = out["probabilities"].numpy()
    assert probs.shape == (6, 2)
    assert ((probs >= 0) & (probs <= 1)).all()
    assert abs(probs.sum(axis=1) - 1).max() < 1e-5
    assert set(out["classes"].numpy().astype(str)) <= {"night", "sunny"}
    assert (out["class_ids"].numpy() == probs.argmax(axis=1)).all()


def test_identical_rerun_is_cached_and_unreachable_threshold_pushes_nothing(first_run):
    cfg = first_run
    before = md.pushed_versions(cfg.serving_model_dir)
    local_runner.run(cfg)
    states = md.last_states(cfg.metadata_path, cfg.runtime.pipeline_name)
    assert states["ImageFolderExampleGen"] == "CACHED"
    assert states["Transform"] == "CACHED"
    assert states["Trainer"] == "CACHED"
    # The Evaluator re-blesses the same model (now against itself as baseline); it is not pushed again.
    assert md.pushed_versions(cfg.serving_model_dir) == before

    # Demand more than the (identical) last blessed model: the change threshold cannot be met.
    cfg.eval.accuracy_threshold = 1.0
    cfg.eval.max_accuracy_drop = -0.01
    local_runner.run(cfg)
    states = md.last_states(cfg.metadata_path, cfg.runtime.pipeline_name)
    assert states["Trainer"] == "CACHED" and states["Evaluator"] == "COMPLETE"
    assert not md.blessed(cfg.metadata_path)
    assert md.pushed_versions(cfg.serving_model_dir) == before
