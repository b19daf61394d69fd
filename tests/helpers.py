"""Helpers several test modules use (tests import them from here or conftest, never from each other)."""

import io
import json
import os

import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from PIL import Image
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import proto_utils

from tfx_image_finetune.components.image_folder_example_gen.component import ImageIngestReport, make_configs
from tfx_image_finetune.components.image_folder_example_gen.executor import Executor
from tfx_image_finetune.components.ingest_report import REPORT_FILE
from tfx_image_finetune.components.image_folder_example_gen.layout import given_split_folders
from tfx_image_finetune.report.evaluation import per_class_precision_recall
from tfx_image_finetune.trainer.transform import preprocessing_fn

SPLIT_RATIOS = {"train": 80, "selection": 10, "test": 10}


def run_example_gen(input_base, out_dir, split_ratios=None, selection_percent=10, **exec_properties):
    """Run the executor as TFX would; returns ({split: [(filename, label)]}, report dict)."""
    folders = given_split_folders(input_base)
    input_config, output_config = make_configs(folders, split_ratios or SPLIT_RATIOS)
    examples = standard_artifacts.Examples()
    examples.uri = os.path.join(out_dir, "examples")
    report = ImageIngestReport()
    report.uri = os.path.join(out_dir, "report")
    os.makedirs(report.uri, exist_ok=True)
    Executor().Do(
        {},
        {"examples": [examples], "ingest_report": [report]},
        {
            "input_base": input_base,
            "input_config": proto_utils.proto_to_json(input_config),
            "output_config": proto_utils.proto_to_json(output_config),
            "output_data_format": 6,  # FORMAT_TF_EXAMPLE
            "output_file_format": 5,  # FORMAT_TFRECORDS_GZIP
            "selection_percent": selection_percent,
            **exec_properties,
        },
    )
    out = {}
    for split in artifact_utils.decode_split_names(examples.split_names):
        rows = []
        for path in tf.io.gfile.glob(os.path.join(artifact_utils.get_split_uri([examples], split), "*")):
            for record in tf.data.TFRecordDataset(path, compression_type="GZIP"):
                ex = tf.train.Example.FromString(record.numpy())
                f = ex.features.feature
                rows.append((f["filename"].bytes_list.value[0].decode(), f["label"].bytes_list.value[0].decode()))
                assert f["image"].bytes_list.value[0]
        out[split] = sorted(rows)
    with open(os.path.join(report.uri, REPORT_FILE)) as f:
        return out, json.load(f)


def run_component_executor(component, out_dir):
    """Run a (Beam) component's executor as TFX's launcher would: its exec properties as the launcher hands them
    (protos as JSON), a fresh output artifact per output channel under out_dir. Returns {output key: artifact}."""
    from google.protobuf import message

    outputs = {}
    for key, channel in component.outputs.items():
        artifact = channel.type()
        artifact.uri = os.path.join(out_dir, key)
        os.makedirs(artifact.uri, exist_ok=True)
        outputs[key] = artifact
    properties = {k: proto_utils.proto_to_json(v) if isinstance(v, message.Message) else v
                  for k, v in component.exec_properties.items() if v is not None}
    component.executor_spec.executor_class().Do({}, {k: [a] for k, a in outputs.items()}, properties)
    return outputs


def encoded_image(color, size=(37, 23), fmt="JPEG"):
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


def analyze_and_transform(rows, label_spec, tmp_path, image_size=32):
    feature_spec = {"image": tf.io.FixedLenFeature([1], tf.string), "label": label_spec}
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(feature_spec))
    config = {"image_key": "image", "label_key": "label", "image_size": image_size}
    with tft_beam.Context(temp_dir=str(tmp_path / "tft_tmp"), force_tf_compat_v1=False):
        (transformed, _), transform_fn = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing_fn(inputs, config))
        _ = transform_fn | tft_beam.WriteTransformFn(str(tmp_path / "transform_fn"))
    metadata_io.write_metadata(metadata, str(tmp_path / "transform_fn" / "metadata"))  # the raw spec, as TFX's
    return transformed, tft.TFTransformOutput(str(tmp_path / "transform_fn"))


def report_data(n_classes):
    """What report.run_report.collect gathers, made up: n classes, skipped files, imbalance, not blessed."""
    classes = [f"class_{i:02d}" for i in range(n_classes)]
    matrix = [[5 if i == j else (1 if j == (i + 1) % n_classes else 0) for j in range(n_classes)]
              for i in range(n_classes)]
    jpeg = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 30, 30)).save(jpeg, format="JPEG")
    epochs = [{"epoch": e, "phase": 1 if e <= 3 else 2, "loss": 1.0 / e, "accuracy": 0.5 + e / 20,
               "val_loss": 1.2 / e, "val_accuracy": 0.4 + e / 20, "trainable_params": 100 * e} for e in range(1, 6)]
    return {
        "run_id": "2026-01-01T00:00:00", "output_dir": "/tmp/out",
        "split_counts": {"train": {c: 40 + 10 * i for i, c in enumerate(classes)},
                         "selection": {c: 5 for c in classes}, "test": {c: 6 for c in classes}},
        "ingest": {"valid_images": 999, "skipped": [{"path": "cats/notes.jpg", "reason": "not an image <b>"}]},
        "history": {"epochs": epochs, "best_epoch": 4, "best_val_loss": 0.3, "classes": classes,
                    "weights": "imagenet", "class_weight": None,
                    "strategy": {"used": 2, "chosen_by": "auto", "recommended": 2, "train_images": 500,
                                 "probe_accuracy": 0.4, "chance": 1 / n_classes, "size": "small",
                                 "similarity": "dissimilar", "unfreeze": "the top 50%", "reason": "why"}},
        "evaluation": {"metrics": {"sparse_categorical_accuracy": 0.55, "example_count": 6.0 * n_classes},
                       "thresholds": {"sparse_categorical_accuracy": {"lower_bound": 0.6, "max_drop": 1e-10}},
                       "validation_ok": False, "failures": ["sparse_categorical_accuracy: below 0.6"],
                       "failed": {"sparse_categorical_accuracy"}, "baseline_metrics": {},
                       "intervals": {"sparse_categorical_accuracy": (0.41, 0.69)}},
        "blessed": False, "baseline": "none: no blessed model yet", "seconds": {"Trainer": 12.5, "Evaluator": 3.0},
        "push": {"pushed": False, "why": "the model was not blessed"},
        "test": {"matrix": matrix, "examples": 6 * n_classes, "total": 6 * n_classes,
                 "per_class": per_class_precision_recall(matrix, classes),
                 "wrong": [{"true": classes[0], "predicted": classes[1], "probability": 0.91, "file": "a.jpg",
                            "image": jpeg.getvalue()}]},
    }


def tfma_evaluation(folder, labels, scores, num_classes, accuracy_threshold=0.5, interval_method=None):
    """Real TFMA over given predictions, with the pipeline's EvalConfig (its metrics, thresholds and confidence
    intervals; the model spec reads `score` and `label_xf` from the examples instead of running a model), as
    TFX's Evaluator runs it on a first run (no baseline): an Evaluator output folder, in seconds.
    `interval_method`: another tfma.ConfidenceIntervalOptions method, or 'none' (benchmarks)."""
    import apache_beam as beam
    import tensorflow_model_analysis as tfma
    from tfx_bsl.tfxio import tf_example_record

    from tfx_image_finetune.config import PipelineConfig
    from tfx_image_finetune.pipeline.pipeline import eval_config

    cfg = PipelineConfig()
    cfg.eval.accuracy_threshold = accuracy_threshold
    config = eval_config(cfg, num_classes)
    config.model_specs[0].CopyFrom(tfma.ModelSpec(label_key="label_xf", prediction_key="score"))
    if interval_method == "none":
        config.options.compute_confidence_intervals.value = False
    elif interval_method is not None:
        config.options.confidence_intervals.method = getattr(tfma.ConfidenceIntervalOptions, interval_method)
    config = tfma.utils.update_eval_config_with_defaults(config, has_baseline=False, rubber_stamp=True)
    os.makedirs(folder, exist_ok=True)
    data = os.path.join(folder, "predictions.tfrecord")
    with tf.io.TFRecordWriter(data) as writer:
        for label, score in zip(labels, scores):
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                "label_xf": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
                "score": tf.train.Feature(float_list=tf.train.FloatList(value=list(score))),
            })).SerializeToString())
    output = os.path.join(folder, "evaluation")
    source = tf_example_record.TFExampleRecord(file_pattern=data, raw_record_column_name=tfma.ARROW_INPUT_COLUMN)
    with beam.Pipeline() as p:
        _ = p | source.BeamSource() | tfma.ExtractEvaluateAndWriteResults(eval_config=config, output_path=output)
    return output


def trainer_inputs(images: str, root, image_size: int = 32):
    """What TFX hands the Trainer, made from an image folder: ExampleGen's TFRecords (train/selection file
    patterns) and Transform's output analyzed over the train split."""
    run_example_gen(images, str(root / "gen"))
    split = {s: os.path.join(str(root), "gen", "examples", f"Split-{s}", "*") for s in ("train", "selection")}
    rows = []
    for record in tf.data.TFRecordDataset(tf.io.gfile.glob(split["train"]), compression_type="GZIP"):
        f = tf.train.Example.FromString(record.numpy()).features.feature
        rows.append({"image": [f["image"].bytes_list.value[0]], "label": [f["label"].bytes_list.value[0]]})
    analyze_and_transform(rows, tf.io.FixedLenFeature([1], tf.string), root, image_size=image_size)
    return {"train_files": [split["train"]], "eval_files": [split["selection"]],
            "transform_output": str(root / "transform_fn")}
