"""create_pipeline(): the one pipeline definition every runner (local, Vertex AI, Kubeflow) uses.

ExampleGen -> StatisticsGen -> ImportSchemaGen|SchemaGen -> ExampleValidator -> ValidationGate ->
Transform -> Trainer -> Evaluator (with the latest blessed model as baseline) -> Pusher.
"""

from __future__ import annotations

from typing import List, Optional

import tensorflow_model_analysis as tfma
from tfx import v1 as tfx

from tfx_image_finetune.components.evaluator.baseline_resolution import BLESSING, MODEL, LatestBlessedModelOfSameTask
from tfx_image_finetune.components.evaluator.component import Evaluator
from tfx_image_finetune.components.image_folder_example_gen.component import ImageFolderExampleGen, hash_split_output
from tfx_image_finetune.components.hyperparameters.component import TrainingHyperparameters
from tfx_image_finetune.components.pusher.component import ServingDirPusher
from tfx_image_finetune.components.tfrecord_example_gen.component import TFRecordExampleGen
from tfx_image_finetune.components.tflite_gate.component import TFLiteGate
from tfx_image_finetune.components.validation_gate.component import ValidationGate
from tfx_image_finetune.components.trainer.component import Trainer
from tfx_image_finetune.component_configs import HYPERPARAMETERS, TrainerConfig, TransformConfig
from tfx_image_finetune.config import PipelineConfig
from tfx_image_finetune.data_contract import INGEST_REPORT_KEY, SELECTION_SPLIT, TEST_SPLIT, TRAIN_SPLIT
from tfx_image_finetune.pipeline.data_layout import DataLayout

PREPROCESSING_FN = "tfx_image_finetune.trainer.transform.preprocessing_fn"
RUN_FN = "tfx_image_finetune.trainer.task.run_fn"
EVALUATOR_BATCH_SIZE = 32
VERTEX_SERVING_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-16:latest"


def example_gen(cfg: PipelineConfig, layout: DataLayout):
    if cfg.data.source == "tfrecord":
        # Existing tf.Examples (e.g. TFDS's cats_vs_dogs TFRecords): split by hash, like an unsplit folder;
        # an example whose image does not decode is skipped and listed in the ingest report.
        return TFRecordExampleGen(
            input_base=layout.root,
            pattern=cfg.data.tfrecord_pattern,
            output_config=hash_split_output(cfg.split_ratios()),
            image_key=cfg.data.image_key,
            label_key=cfg.data.label_key,
            max_image_pixels=cfg.data.max_image_pixels,
        ).with_id("ImportExampleGen")
    return ImageFolderExampleGen(input_base=layout.root, split_folders=layout.split_folders,
                                 split_ratios=cfg.split_ratios(), selection_percent=cfg.data.selection_ratio,
                                 max_image_pixels=cfg.data.max_image_pixels)


def baseline_resolver(cfg: PipelineConfig, classes: Optional[List[str]], for_kfp: bool):
    """The latest blessed model of this task (same classes, image size and features) as the Evaluator's
    baseline. KFP v2 compiles only TFX's own strategies: in the cloud the latest blessed model of any task,
    which the Evaluator's executor drops when it is of another task."""
    channels = {MODEL: tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
                BLESSING: tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing)}
    if for_kfp:
        resolver = tfx.dsl.Resolver(strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy, **channels)
    else:
        task = {"image_size": cfg.image_size, "image_key": cfg.data.image_key, "label_key": cfg.data.label_key}
        if classes:  # unknown before the data is read for a TFRecord source: the executor still checks them
            task["classes"] = classes
        resolver = tfx.dsl.Resolver(strategy_class=LatestBlessedModelOfSameTask, config=task, **channels)
    return resolver.with_id("latest_blessed_model_resolver")


def drift_gate(cfg: PipelineConfig, classes: Optional[List[str]], statistics, gen) -> list:
    """--fail-on-drift: [the replaced model's data (resolver), DriftGate over this run's data against it]."""
    from tfx_image_finetune.components.data_drift import baseline_data
    from tfx_image_finetune.components.data_drift.component import DriftGate
    from tfx_image_finetune.components.image_folder_example_gen.component import ImageIngestReport

    task = {"image_size": cfg.image_size, "image_key": cfg.data.image_key, "label_key": cfg.data.label_key,
            **({"classes": classes} if classes else {})}
    resolver = tfx.dsl.Resolver(strategy_class=baseline_data.BaselineDataOfSameTask, config=task, **{
        MODEL: tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        BLESSING: tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
        baseline_data.STATISTICS: tfx.dsl.Channel(type=tfx.types.standard_artifacts.ExampleStatistics),
        baseline_data.INGEST_REPORT: tfx.dsl.Channel(type=ImageIngestReport),
    }).with_id("replaced_model_data_resolver")
    gate = DriftGate(statistics=statistics.outputs["statistics"], ingest_report=gen.outputs[INGEST_REPORT_KEY],
                     baseline_statistics=resolver.outputs[baseline_data.STATISTICS],
                     baseline_ingest_report=resolver.outputs[baseline_data.INGEST_REPORT],
                     threshold=cfg.data.drift_threshold, comparator=cfg.data.drift_comparator,
                     label_key=cfg.data.label_key)
    return [resolver, gate]


def eval_config(cfg: PipelineConfig, num_classes: int) -> tfma.EvalConfig:
    """Binary: BinaryAccuracy, AUC, Precision, Recall; multi-class: SparseCategoricalAccuracy. Both gated.
    Plus the test split's confusion counts, and 95% confidence intervals on every metric."""
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
    # The report's confusion matrix and per-class precision/recall (report/evaluation.py), in a spec of their
    # own with no threshold: what is blessed does not change. MultiClassConfusionMatrixPlot needs a probability
    # per class: the binary model's one positive-class score gets TFMA's counts at 0.5 (BinaryAccuracy's).
    counts = (tfma.MetricConfig(class_name="ConfusionMatrixAtThresholds", config='{"thresholds": [0.5]}')
              if binary else tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot"))
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(
            signature_name="evaluation",
            preprocessing_function_names=["transform_features"],
            label_key="label_xf",
            prediction_key="score",
            # Images, not rows of numbers: a fixed batch keeps the Evaluator's memory flat (TFX issue 5777:
            # TFMA's growing batches of decoded images run out of memory).
            inference_batch_size=EVALUATOR_BATCH_SIZE,
        )],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics), tfma.MetricsSpec(metrics=[counts])],
        # 95% confidence intervals on the test metrics, for the verdict's uncertainty (the closing line and
        # the report). Thresholds are still judged on the value over the whole split (TFMA's unsampled value).
        # Jackknife: 20 leave-a-bucket-out combines over the predictions already made (no second inference);
        # cost and width against TFMA's Poisson bootstrap: benchmarks/evaluation_intervals.py.
        options=tfma.Options(compute_confidence_intervals={"value": True},
                             confidence_intervals=tfma.ConfidenceIntervalOptions(
                                 method=tfma.ConfidenceIntervalOptions.JACKKNIFE)),
    )


def hyperparameters(cfg: PipelineConfig, for_kfp: bool) -> TrainingHyperparameters:
    """Epochs and learning rates; as RuntimeParameters (pipeline parameters on Vertex/Kubeflow) if asked."""
    values = {name: getattr(cfg.training, name) for name in HYPERPARAMETERS}
    if for_kfp:
        values = {
            name: tfx.dsl.experimental.RuntimeParameter(name=name, ptype=HYPERPARAMETERS[name], default=value)
            for name, value in values.items()
        }
    return TrainingHyperparameters(**values)


def trainer(cfg: PipelineConfig, num_classes: int, **kwargs):
    """The Trainer: in-process, or on Vertex AI Training (a GPU worker pool; several machines with --training-replicas)."""
    custom_config = TrainerConfig.of(cfg, num_classes).to_custom_config()
    if not cfg.cloud.vertex_training:
        return Trainer(custom_config=custom_config, **kwargs)
    from tfx_image_finetune.components.trainer.vertex import VertexTrainer

    vertex = tfx.extensions.google_cloud_ai_platform
    c = cfg.cloud
    def pool(replicas: int) -> dict:
        return {"machine_spec": {"machine_type": c.training_machine_type, "accelerator_type": c.accelerator_type,
                                 "accelerator_count": c.accelerator_count},
                "replica_count": replicas, "container_spec": {"image_uri": c.image_uri}}

    # Pool 0 is the chief; pool 1 the other workers. Vertex AI sets TF_CONFIG in each (chief / worker), and
    # TFX runs the Trainer executor in every replica (trainer/distribute.py: the chief alone exports).
    pools = [pool(1)] + ([pool(c.training_replicas - 1)] if c.training_replicas > 1 else [])
    custom_config.update({
        vertex.ENABLE_VERTEX_KEY: True,
        vertex.VERTEX_REGION_KEY: c.region,
        vertex.TRAINING_ARGS_KEY: {"project": c.project, "worker_pool_specs": pools},
    })
    return VertexTrainer(custom_config=custom_config, **kwargs).with_id("Trainer")


def vertex_pusher(cfg: PipelineConfig, model, blessing):
    """Optional: upload the blessed model to Vertex AI and deploy it to an endpoint, if it passes the same
    servable check as the file-system push."""
    from tfx_image_finetune.components.pusher.vertex import CheckedVertexPusher

    vertex = tfx.extensions.google_cloud_ai_platform
    c = cfg.cloud
    return CheckedVertexPusher(model=model, model_blessing=blessing, custom_config={
        vertex.ENABLE_VERTEX_KEY: True,
        vertex.VERTEX_REGION_KEY: c.region,
        vertex.VERTEX_CONTAINER_IMAGE_URI_KEY: VERTEX_SERVING_IMAGE,
        vertex.SERVING_ARGS_KEY: {"project_id": c.project, "endpoint_name": c.vertex_endpoint,
                                  "machine_type": "n1-standard-4"},
    }).with_id("VertexPusher")


def tflite_gate(cfg: PipelineConfig, gen, train, transform, layout: DataLayout) -> TFLiteGate:
    """The TFLite model against the SavedModel on the Evaluator's split (components/tflite_gate)."""
    from tfx_image_finetune.trainer.transform import IMAGE_XF, LABEL_XF

    return TFLiteGate(examples=gen.outputs["examples"], model=train.outputs["model"],
                      transform_graph=transform.outputs["transform_graph"], split=layout.evaluation_split,
                      max_accuracy_drop=cfg.eval.tflite_max_accuracy_drop, image_feature=IMAGE_XF,
                      label_feature=LABEL_XF)


def create_pipeline(cfg: PipelineConfig, beam_pipeline_args: Optional[List[str]] = None,
                    metadata_connection_config=None, for_kfp: bool = False,
                    layout: Optional[DataLayout] = None) -> tfx.dsl.Pipeline:
    """The whole pipeline for `cfg`; runners differ only in how they run it.

    `beam_pipeline_args` apply to every Beam component; `cfg.cloud.beam_overrides` add per-component args.
    `for_kfp` turns epochs and learning rates into pipeline parameters (cloud runners).
    `layout`: the runner's resolved layout (resolved here from `cfg` if not given).
    """
    layout = layout or DataLayout.resolve(cfg)
    classes, num_classes = layout.classes, layout.num_classes
    gen = example_gen(cfg, layout)
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
        custom_config=TransformConfig.of(cfg).to_custom_config(),
        # The label vocabulary covers every split, so a class seen only outside train is named by the Trainer
        # (no training examples) instead of becoming an unknown id in the Evaluator.
        splits_config=tfx.proto.SplitsConfig(analyze=[TRAIN_SPLIT, SELECTION_SPLIT, TEST_SPLIT]),
        materialize=False,
        disable_statistics=True,
    )
    transform.add_upstream_node(gate)
    drift = drift_gate(cfg, classes, statistics, gen) if cfg.data.fail_on_drift else []
    for node in drift[1:]:
        transform.add_upstream_node(node)

    baseline = baseline_resolver(cfg, classes, for_kfp)
    hparams = hyperparameters(cfg, for_kfp)
    # --warm-start: the Trainer may begin from the latest blessed model of this task (trainer/warm_start.py
    # checks that it fits).
    warm = {"base_model": baseline.outputs["model"]} if cfg.training.warm_start else {}
    train = trainer(
        cfg,
        num_classes,
        hyperparameters=hparams.outputs["hyperparameters"],
        run_fn=RUN_FN,
        examples=gen.outputs["examples"],
        ingest_report=gen.outputs[INGEST_REPORT_KEY],  # the examples per class, counted by ExampleGen
        transform_graph=transform.outputs["transform_graph"],
        schema=schema.outputs["schema"],
        train_args=tfx.proto.TrainArgs(splits=[TRAIN_SPLIT]),
        eval_args=tfx.proto.EvalArgs(splits=[SELECTION_SPLIT]),  # early stopping and best weights
        **warm,
    )
    evaluator = Evaluator(
        examples=gen.outputs["examples"],
        model=train.outputs["model"],
        baseline_model=baseline.outputs["model"],
        eval_config=eval_config(cfg, num_classes),
        example_splits=[layout.evaluation_split],  # never seen by training, early stopping or weight selection
    )
    # --tflite: the Trainer's TFLite model judged on the same split; the Pusher adds it to the version if it passes.
    lite_gate = tflite_gate(cfg, gen, train, transform, layout) if cfg.model.tflite != "none" else None
    pusher = ServingDirPusher(
        model=train.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        tflite_evaluation=lite_gate.outputs["evaluation"] if lite_gate else None,
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=cfg.serving_model_dir)
        ),
        custom_config={"keep_versions": cfg.serving.keep_versions, "check_servable": cfg.serving.check_servable},
    ).with_id("Pusher")

    components = [gen, statistics, schema, validator, gate, *drift, transform, hparams, train, baseline, evaluator,
                  *([lite_gate] if lite_gate else []), pusher]
    if cfg.cloud.vertex_endpoint:
        components.append(vertex_pusher(cfg, train.outputs["model"], evaluator.outputs["blessing"]))
    for component in components:
        extra = cfg.cloud.beam_overrides.get(component.id)
        if extra:
            component.with_beam_pipeline_args(extra)
    return tfx.dsl.Pipeline(
        pipeline_name=cfg.runtime.pipeline_name,
        pipeline_root=cfg.pipeline_root,
        components=components,
        enable_cache=cfg.runtime.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args or [],
    )

