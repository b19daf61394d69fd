"""create_pipeline(): the one pipeline definition every runner (local, Vertex AI, Kubeflow) uses.

ExampleGen -> StatisticsGen -> ImportSchemaGen|SchemaGen -> ExampleValidator -> ValidationGate ->
Transform -> Trainer -> Evaluator (with the latest blessed model as baseline) -> Pusher.
"""

from __future__ import annotations

from typing import List, Optional

import tensorflow_model_analysis as tfma
from tfx import v1 as tfx

from components.image_folder_example_gen.component import ImageFolderExampleGen
from components.image_folder_example_gen.layout import class_folders, given_splits
from components.validation_gate.component import ValidationGate
from pipeline.configs import PipelineConfig

PREPROCESSING_FN = "trainer.transform.preprocessing_fn"
RUN_FN = "trainer.task.run_fn"


def example_gen(cfg: PipelineConfig):
    data = cfg.data
    if data.source == "tfrecord":
        # Existing tf.Examples (e.g. TFDS's cats_vs_dogs TFRecords): split by hash, like an unsplit folder.
        return tfx.components.ImportExampleGen(
            input_base=data.path,
            input_config=tfx.proto.Input(splits=[tfx.proto.Input.Split(name="all", pattern=data.tfrecord_pattern)]),
            output_config=tfx.proto.Output(split_config=tfx.proto.SplitConfig(splits=[
                tfx.proto.SplitConfig.Split(name=name, hash_buckets=ratio)
                for name, ratio in cfg.split_ratios().items()
            ])),
        )
    root = data.path or cfg.demo_data_dir
    return ImageFolderExampleGen(input_base=root, given_splits=given_splits(root), split_ratios=cfg.split_ratios())


def count_classes(cfg: PipelineConfig) -> int:
    """Number of classes: the config's, else the class folders of the image root (train split if split)."""
    if cfg.data.num_classes:
        return cfg.data.num_classes
    root = cfg.data.path or cfg.demo_data_dir
    splits = given_splits(root)
    return len(class_folders(f"{root.rstrip('/')}/{splits['train']}" if splits else root))


def eval_config(cfg: PipelineConfig, num_classes: int) -> tfma.EvalConfig:
    """Binary: BinaryAccuracy, AUC, Precision, Recall; multi-class: SparseCategoricalAccuracy. Both gated."""
    binary = num_classes == 2
    threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": cfg.eval.accuracy_threshold}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -cfg.eval.max_accuracy_drop}
        ),
    )
    metrics: List[tfma.MetricConfig] = [tfma.MetricConfig(class_name="ExampleCount")]
    if binary:
        metrics += [
            tfma.MetricConfig(class_name="BinaryAccuracy", threshold=threshold),
            tfma.MetricConfig(class_name="AUC"),
            tfma.MetricConfig(class_name="Precision"),
            tfma.MetricConfig(class_name="Recall"),
        ]
    else:
        metrics += [tfma.MetricConfig(class_name="SparseCategoricalAccuracy", threshold=threshold)]
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(
            signature_name="evaluation",
            preprocessing_function_names=["transform_features"],
            label_key="label_xf",
            prediction_key="score",
        )],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
    )


def create_pipeline(cfg: PipelineConfig, beam_pipeline_args: Optional[List[str]] = None,
                    metadata_connection_config=None) -> tfx.dsl.Pipeline:
    """The whole pipeline for `cfg`; runners differ only in how they run it."""
    num_classes = count_classes(cfg)
    custom_config = cfg.trainer_config()

    gen = example_gen(cfg)
    statistics = tfx.components.StatisticsGen(examples=gen.outputs["examples"])
    if cfg.data.infer_schema or cfg.data.source == "tfrecord":
        schema = tfx.components.SchemaGen(statistics=statistics.outputs["statistics"], infer_feature_shape=True)
    else:
        schema = tfx.components.ImportSchemaGen(schema_file=f"{cfg.data.schema_dir}/schema.pbtxt")
    validator = tfx.components.ExampleValidator(
        statistics=statistics.outputs["statistics"], schema=schema.outputs["schema"]
    )
    gate = ValidationGate(anomalies=validator.outputs["anomalies"])

    # Not materialized: decoded float images are ~100x the JPEGs on disk. The Trainer applies the
    # transform graph in its tf.data pipeline (and caches the decoded images in memory), and the exported
    # model carries the same graph, so serving decodes exactly as training did. Statistics over
    # millions of transformed pixels are of no use, so they are off too.
    transform = tfx.components.Transform(
        examples=gen.outputs["examples"],
        schema=schema.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        custom_config=custom_config,
        materialize=False,
        disable_statistics=True,
    )
    transform.add_upstream_node(gate)

    eval_split = "test" if cfg.data.test_ratio or _has_given_test_split(cfg) else "eval"
    trainer = tfx.components.Trainer(
        run_fn=RUN_FN,
        examples=gen.outputs["examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema.outputs["schema"],
        train_args=tfx.proto.TrainArgs(splits=["train"]),
        eval_args=tfx.proto.EvalArgs(splits=["eval"]),
        custom_config=custom_config,
    )
    baseline = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    evaluator = tfx.components.Evaluator(
        examples=gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline.outputs["model"],
        eval_config=eval_config(cfg, num_classes),
        example_splits=[eval_split],
    )
    pusher = tfx.components.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=cfg.serving_model_dir)
        ),
    )
    return tfx.dsl.Pipeline(
        pipeline_name=cfg.runtime.pipeline_name,
        pipeline_root=cfg.pipeline_root,
        components=[gen, statistics, schema, validator, gate, transform, trainer, baseline, evaluator, pusher],
        enable_cache=cfg.runtime.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args or [],
    )


def _has_given_test_split(cfg: PipelineConfig) -> bool:
    if cfg.data.source != "image_folder":
        return False
    splits = given_splits(cfg.data.path or cfg.demo_data_dir)
    return bool(splits and "test" in splits)
