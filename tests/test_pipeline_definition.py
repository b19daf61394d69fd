"""create_pipeline(): the components, their wiring and the Evaluator's gate, without running anything."""

import json
import os
import shutil

import pytest
import tensorflow_data_validation as tfdv
from tfx.types import standard_artifacts

from tfx_image_finetune.components.validation_gate.component import DataAnomaliesError, ValidationGate
from tfx_image_finetune.config import PipelineConfig
from tfx_image_finetune.pipeline.pipeline import create_pipeline, eval_config

GateExecutor = ValidationGate.EXECUTOR_SPEC.executor_class  # the @component's generated executor


def _cfg(data, **data_overrides):
    cfg = PipelineConfig()
    cfg.data.path = data
    for key, value in data_overrides.items():
        setattr(cfg.data, key, value)
    cfg.runtime.output_dir = "/tmp/unused"
    return cfg


def _by_id(pipeline):
    return {c.id: c for c in pipeline.components}


def test_image_folder_pipeline_wiring(demo_images):
    components = _by_id(create_pipeline(_cfg(demo_images)))
    assert set(components) == {
        "ImageFolderExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "ValidationGate",
        "Transform", "TrainingHyperparameters", "Trainer", "latest_blessed_model_resolver", "Evaluator", "Pusher",
    }
    transform = components["Transform"]
    assert components["ValidationGate"] in transform.upstream_nodes  # anomalies stop the run before Transform
    assert transform.exec_properties["force_tf_compat_v1"] in (0, False)
    assert transform.outputs.get("transformed_examples") is None  # not materialized
    assert components["Trainer"].inputs["examples"] is components["ImageFolderExampleGen"].outputs["examples"]
    assert components["Evaluator"].inputs["baseline_model"] is components["latest_blessed_model_resolver"].outputs["model"]
    assert components["Pusher"].inputs["model_blessing"] is components["Evaluator"].outputs["blessing"]
    assert json.loads(components["Pusher"].exec_properties["custom_config"]) == {"keep_versions": 5, "check_servable": True}
    assert "SchemaGen" not in components
    inferred = _by_id(create_pipeline(_cfg(demo_images, infer_schema=True)))
    assert "SchemaGen" in inferred and "ImportSchemaGen" not in inferred


def test_warm_start_feeds_the_latest_blessed_model_to_the_trainer(demo_images):
    assert "base_model" not in _by_id(create_pipeline(_cfg(demo_images)))["Trainer"].inputs  # the default
    cfg = _cfg(demo_images)
    cfg.training.warm_start = True
    components = _by_id(create_pipeline(cfg))
    assert components["Trainer"].inputs["base_model"] is components["latest_blessed_model_resolver"].outputs["model"]
    assert json.loads(components["Trainer"].exec_properties["custom_config"])["training"]["warm_start"] is True


def test_fail_on_drift_puts_a_drift_gate_before_transform(demo_images):
    assert "DriftGate" not in _by_id(create_pipeline(_cfg(demo_images)))  # the default: warnings only, no node
    components = _by_id(create_pipeline(_cfg(demo_images, fail_on_drift=True, drift_threshold=0.3)))
    gate, resolver = components["DriftGate"], components["replaced_model_data_resolver"]
    assert gate in components["Transform"].upstream_nodes  # a drift stops the run before training
    assert gate.inputs["statistics"] is components["StatisticsGen"].outputs["statistics"]
    assert gate.inputs["baseline_statistics"] is resolver.outputs["statistics"]
    assert gate.inputs["baseline_ingest_report"] is resolver.outputs["ingest_report"]
    assert (gate.exec_properties["threshold"], gate.exec_properties["comparator"]) == (0.3, "linf")


def test_tfrecord_source_reaches_the_same_transform(tmp_path):
    cfg = _cfg(str(tmp_path), source="tfrecord", num_classes=2, image_key="image", label_key="label")
    components = _by_id(create_pipeline(cfg))
    assert "ImportExampleGen" in components and "SchemaGen" in components
    transform = components["Transform"]
    assert transform.inputs["examples"] is components["ImportExampleGen"].outputs["examples"]
    assert transform.exec_properties["preprocessing_fn"] == "tfx_image_finetune.trainer.transform.preprocessing_fn"
    split_config = json.loads(components["ImportExampleGen"].exec_properties["output_config"])["split_config"]
    assert split_config["splits"] == [{"name": "train", "hash_buckets": 80}, {"name": "selection", "hash_buckets": 10},
                                      {"name": "test", "hash_buckets": 10}]


def test_eval_config_metrics_and_thresholds_follow_the_class_count():
    cfg = PipelineConfig()
    cfg.eval.accuracy_threshold = 0.75
    binary = eval_config(cfg, 2)
    names = [m.class_name for m in binary.metrics_specs[0].metrics]
    assert names == ["ExampleCount", "BinaryAccuracy", "AUC", "Precision", "Recall"]
    gate = binary.metrics_specs[0].metrics[1].threshold
    assert gate.value_threshold.lower_bound.value == 0.75
    assert gate.change_threshold.absolute.value == pytest.approx(-1e-10)
    assert binary.model_specs[0].preprocessing_function_names == ["transform_features"]
    assert binary.model_specs[0].inference_batch_size == 32  # bounded image batches
    multi = eval_config(cfg, 5)
    assert [m.class_name for m in multi.metrics_specs[0].metrics] == ["ExampleCount", "SparseCategoricalAccuracy"]


@pytest.mark.parametrize("folders", [None, ("train", "validation"), ("train", "validation", "test")])
def test_the_evaluator_judges_examples_that_never_chose_the_model(demo_images, tmp_path, folders):
    root = tmp_path / "data"
    for split in folders or ():
        shutil.copytree(demo_images, root / split)
    components = _by_id(create_pipeline(_cfg(str(root) if folders else demo_images)))
    trainer, evaluator = components["Trainer"], components["Evaluator"]
    assert json.loads(trainer.exec_properties["train_args"]) == {"splits": ["train"]}
    assert json.loads(trainer.exec_properties["eval_args"]) == {"splits": ["selection"]}  # early stopping, best weights
    assert evaluator.exec_properties["example_splits"] == '["test"]'
    inputs = json.loads(components["ImageFolderExampleGen"].exec_properties["input_config"])["splits"]
    patterns = {split["name"]: split["pattern"] for split in inputs}
    if folders == ("train", "validation"):
        assert patterns == {"train": "train/*/*", "selection": "train/*/*", "test": "validation/*/*"}
    elif folders:
        assert patterns == {"train": "train/*/*", "selection": "validation/*/*", "test": "test/*/*"}
    else:
        assert patterns == {"all": "*/*"}


def test_transform_sees_only_what_its_graph_uses(demo_images):
    cfg = _cfg(demo_images)
    transform = _by_id(create_pipeline(cfg))["Transform"]
    assert json.loads(transform.exec_properties["custom_config"]) == {"image_key": "image", "label_key": "label",
                                                                      "image_size": 150, "max_image_pixels": 89478485}
    cfg.training.finetune_epochs, cfg.training.head_learning_rate, cfg.model.strategy = 3, 0.5, 2
    assert _by_id(create_pipeline(cfg))["Transform"].exec_properties == transform.exec_properties
    assert json.loads(transform.exec_properties["splits_config"])["analyze"] == ["train", "selection", "test"]


def test_the_pixel_limit_reaches_example_gen_and_transform(demo_images):
    cfg = _cfg(demo_images)
    cfg.data.max_image_pixels = 1000
    nodes = _by_id(create_pipeline(cfg))
    assert nodes["ImageFolderExampleGen"].exec_properties["max_image_pixels"] == 1000
    assert json.loads(nodes["Transform"].exec_properties["custom_config"])["max_image_pixels"] == 1000


def _anomalies_artifact(tmp_path, examples):
    """A real ExampleAnomalies artifact: TFDV validates statistics of `examples` against the curated schema."""
    from tfx.types import artifact_utils
    from tfx.utils import io_utils

    from tfx_image_finetune.data_contract import CURATED_SCHEMA_DIR

    schema = io_utils.SchemaReader().read(os.path.join(CURATED_SCHEMA_DIR, "schema.pbtxt"))
    stats = tfdv.generate_statistics_from_dataframe(examples)
    artifact = standard_artifacts.ExampleAnomalies()
    artifact.uri = str(tmp_path / "anomalies")
    artifact.split_names = artifact_utils.encode_split_names(["train"])
    split_dir = os.path.join(artifact.uri, "Split-train")
    os.makedirs(split_dir)
    anomalies = tfdv.validate_statistics(stats, schema)
    with open(os.path.join(split_dir, "SchemaDiff.pb"), "wb") as f:
        f.write(anomalies.SerializeToString())
    return artifact


def test_validation_gate_fails_on_anomalies_and_passes_clean_data(tmp_path):
    import pandas as pd

    good = pd.DataFrame({"image": [b"x", b"y"], "label": [b"a", b"b"], "filename": [b"a/1", b"b/2"]})
    GateExecutor().Do({"anomalies": [_anomalies_artifact(tmp_path / "good", good)]}, {}, {})
    bad = pd.DataFrame({"image": [b"x", b"y"], "label": [b"a", b"b"]})  # no filename feature
    with pytest.raises(DataAnomaliesError, match="feature 'filename'"):
        GateExecutor().Do({"anomalies": [_anomalies_artifact(tmp_path / "bad", bad)]}, {}, {})


def test_tflite_adds_its_gate_on_the_evaluators_split_and_feeds_the_pusher(demo_images):
    assert "TFLiteGate" not in _by_id(create_pipeline(_cfg(demo_images)))  # the default: --tflite none
    cfg = _cfg(demo_images)
    cfg.model.tflite, cfg.eval.tflite_max_accuracy_drop = "int8", 0.02
    components = _by_id(create_pipeline(cfg))
    gate = components["TFLiteGate"]
    assert gate.inputs["model"] is components["Trainer"].outputs["model"]
    assert gate.inputs["examples"] is components["Evaluator"].inputs["examples"]
    assert gate.exec_properties["split"] == json.loads(components["Evaluator"].exec_properties["example_splits"])[0]
    assert gate.exec_properties["max_accuracy_drop"] == 0.02
    assert components["Pusher"].inputs["tflite_evaluation"] is gate.outputs["evaluation"]
    assert json.loads(components["Trainer"].exec_properties["custom_config"])["model"]["tflite"] == "int8"
