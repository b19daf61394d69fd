"""`tfx-image-finetune`: the command line. Heavy modules (TF, TFX) are imported only once a command runs."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from typing import List, Optional

from pipeline.configs import BEAM_RUNNING_MODES, ConfigError, PipelineConfig, demo_config
from pipeline.predict import ServingError

DEFAULTS = PipelineConfig()
BACKBONE_CHOICES = ["xception", "mobilenet_v2", "efficientnet_b0", "resnet50"]


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    """The pipeline's own knobs: the same for a local run and a cloud compile."""
    d, m, t, e, r = DEFAULTS.data, DEFAULTS.model, DEFAULTS.training, DEFAULTS.eval, DEFAULTS.runtime
    g = p.add_argument_group("data")
    g.add_argument("--data", help="image folder (<root>/<class>/<img>, or already split into train/ and "
                                  "validation/ or eval/ [and test/]); default: generated demo images")
    g.add_argument("--source", choices=["image_folder", "tfrecord"], default=d.source)
    g.add_argument("--tfrecord-pattern", default=d.tfrecord_pattern, help="TFRecord files, relative to --data")
    g.add_argument("--image-key", default=d.image_key)
    g.add_argument("--label-key", default=d.label_key)
    g.add_argument("--num-classes", type=int, help="class count (required with --source tfrecord and in the cloud)")
    g.add_argument("--split", default=f"{d.train_ratio},{d.selection_ratio},{d.test_ratio}",
                   help="train,selection,test percentages of an unsplit folder (default %(default)s); for a root "
                        "split into train/ + validation/ only, the selection percentage of train/ is selection")
    g.add_argument("--split-folders", help="'train,validation[,test]' for an already-split root, 'none' for an "
                                           "unsplit one (default: look at the folder)")
    g.add_argument("--infer-schema", action="store_true", help="SchemaGen inference instead of schema/")
    g = p.add_argument_group("model")
    g.add_argument("--backbone", default=m.backbone, choices=BACKBONE_CHOICES)
    g.add_argument("--alpha", type=float, default=m.alpha, help="MobileNetV2 width multiplier")
    g.add_argument("--image-size", type=int, help="input side in pixels (default: the backbone's)")
    g.add_argument("--weights", default=m.weights, help="'imagenet', 'none' or a weights file PATH")
    g.add_argument("--strategy", type=_strategy, choices=[1, 2, 3, "auto"], default=m.strategy,
                   help="1: unfreeze all in phase 2; 2: unfreeze the top part; 3: head only; auto: from data size "
                        "and a linear probe of the frozen backbone (default %(default)s)")
    g.add_argument("--unfreeze-fraction", type=float, default=m.unfreeze_fraction)
    g.add_argument("--unfreeze-from-layer")
    g = p.add_argument_group("training")
    g.add_argument("--head-epochs", type=int)
    g.add_argument("--finetune-epochs", type=int)
    g.add_argument("--head-learning-rate", type=float, default=t.head_learning_rate)
    g.add_argument("--finetune-learning-rate", type=float, default=t.finetune_learning_rate)
    g.add_argument("--batch-size", type=int, default=t.batch_size)
    g.add_argument("--feature-views", type=int, default=t.feature_views,
                   help="phase 1 on cached base outputs of N augmented views per image (0: on images, fresh "
                        "augmentation every epoch; default %(default)s)")
    g.add_argument("--patience", type=int, default=t.early_stopping_patience, help="early-stopping patience")
    g.add_argument("--class-weight", choices=["none", "balanced"], default=t.class_weight,
                   help="balanced: weight the loss by inverse class frequency (default %(default)s)")
    g.add_argument("--warm-start", action="store_true", help="start from the latest blessed model's weights when "
                                                             "backbone, image size and class list match")
    g = p.add_argument_group("evaluation and push")
    g.add_argument("--accuracy-threshold", type=float, help=f"bless at or above (default {e.accuracy_threshold})")
    g.add_argument("--serving-dir", help="TF Serving model base (default: <output>/serving)")
    g.add_argument("--model-name", default=DEFAULTS.serving.model_name)
    g.add_argument("--keep-versions", type=int, default=DEFAULTS.serving.keep_versions,
                   help="pushed versions to keep, oldest removed first; 0 keeps all (default %(default)s)")
    g.add_argument("--no-servable-check", action="store_true",
                   help="push without first loading the model and replaying its warmup requests")
    g = p.add_argument_group("runtime")
    g.add_argument("--pipeline-name", default=r.pipeline_name)
    g.add_argument("--beam-mode", default=r.direct_running_mode, choices=BEAM_RUNNING_MODES,
                   help="Beam on one machine's cores (local runs; cloud tasks without --dataflow): one worker process "
                        "per core, threads, or in the process itself (default %(default)s)")
    g.add_argument("--no-cache", action="store_true")


def _add_cloud_flags(p: argparse.ArgumentParser, pipeline_root_required: bool) -> None:
    c = DEFAULTS.cloud
    g = p.add_argument_group("cloud")
    g.add_argument("--target", choices=["vertex", "kubeflow"], default=c.target)
    g.add_argument("--pipeline-root", required=pipeline_root_required,
                   help="gs:// folder for artifacts (the pipeline root lives below it)")
    g.add_argument("--project", help="Google Cloud project (required for vertex)")
    g.add_argument("--region", default=c.region)
    g.add_argument("--image", help="pipeline image URI (default gcr.io/<project>/tfx-image-finetune:latest)")
    g.add_argument("--service-account")
    g.add_argument("--schema-dir", help="folder with schema.pbtxt as the pipeline image sees it "
                                        "(default: the copy the Dockerfile puts at /pipeline/schema)")
    g.add_argument("--dataflow", action="store_true", help="run the Beam components on Dataflow")
    g.add_argument("--dataflow-machine-type", default=c.dataflow_machine_type)
    g.add_argument("--dataflow-max-workers", type=int, default=c.dataflow_max_workers)
    g.add_argument("--dataflow-temp-location", help="default: <pipeline-root>/tmp")
    g.add_argument("--beam-arg", action="append", default=[], metavar="COMPONENT=ARG",
                   help="extra Beam arg for one component, e.g. Transform=--machine_type=n1-highmem-8 (repeatable)")
    g.add_argument("--vertex-training", action="store_true", help="Trainer on Vertex AI Training (GPU pool)")
    g.add_argument("--training-machine-type", default=c.training_machine_type)
    g.add_argument("--accelerator-type", default=c.accelerator_type)
    g.add_argument("--accelerator-count", type=int, default=c.accelerator_count)
    g.add_argument("--vertex-endpoint", help="also upload the blessed model to Vertex AI and deploy to this endpoint")


def _strategy(value: str):
    """--strategy: 1, 2, 3 (ints, as in ModelConfig) or auto."""
    return value if value == "auto" else int(value)


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    demo = getattr(args, "demo", False)
    output = getattr(args, "output_dir", None) or DEFAULTS.runtime.output_dir
    cfg = demo_config(output) if demo else PipelineConfig()
    if demo and args.data:
        raise ConfigError("--demo uses the generated images; drop --data or --demo")
    d, m, t = cfg.data, cfg.model, cfg.training
    d.path, d.source, d.tfrecord_pattern = args.data, args.source, args.tfrecord_pattern
    d.image_key, d.label_key, d.num_classes, d.infer_schema = args.image_key, args.label_key, args.num_classes, args.infer_schema
    d.split_folders = args.split_folders
    try:
        ratios = [int(x) for x in args.split.split(",")]
    except ValueError:
        raise ConfigError(f"--split must be three integers like 80,10,10, got {args.split!r}") from None
    if len(ratios) != 3:
        raise ConfigError(f"--split takes three percentages (train,selection,test), got {args.split!r}")
    d.train_ratio, d.selection_ratio, d.test_ratio = ratios
    m.backbone, m.alpha, m.image_size, m.strategy = args.backbone, args.alpha, args.image_size, args.strategy
    m.unfreeze_fraction, m.unfreeze_from_layer = args.unfreeze_fraction, args.unfreeze_from_layer
    if not demo or args.weights != DEFAULTS.model.weights:
        m.weights = args.weights
    t.head_epochs = args.head_epochs if args.head_epochs is not None else t.head_epochs
    t.finetune_epochs = args.finetune_epochs if args.finetune_epochs is not None else t.finetune_epochs
    t.head_learning_rate, t.finetune_learning_rate = args.head_learning_rate, args.finetune_learning_rate
    t.batch_size, t.early_stopping_patience, t.feature_views = args.batch_size, args.patience, args.feature_views
    t.class_weight, t.warm_start = args.class_weight, args.warm_start
    if args.accuracy_threshold is not None:
        cfg.eval.accuracy_threshold = args.accuracy_threshold
    cfg.serving.serving_dir, cfg.serving.model_name = args.serving_dir, args.model_name
    cfg.serving.keep_versions, cfg.serving.check_servable = args.keep_versions, not args.no_servable_check
    r = cfg.runtime
    r.output_dir, r.pipeline_name, r.enable_cache = output, args.pipeline_name, not args.no_cache
    r.direct_running_mode = args.beam_mode
    if hasattr(args, "target"):
        _cloud_from_args(cfg, args)
    return cfg.validate(local=not hasattr(args, "target"))


def _cloud_from_args(cfg: PipelineConfig, args: argparse.Namespace) -> None:
    from pipeline.configs import validate_for_cloud

    c = cfg.cloud
    c.target, c.project, c.region, c.image, c.service_account = (
        args.target, args.project, args.region, args.image, args.service_account)
    c.dataflow, c.dataflow_machine_type, c.dataflow_max_workers = (
        args.dataflow, args.dataflow_machine_type, args.dataflow_max_workers)
    c.dataflow_temp_location = args.dataflow_temp_location
    for item in args.beam_arg:
        component, sep, beam_arg = item.partition("=")
        if not sep or not beam_arg.startswith("--"):
            raise ConfigError(f"--beam-arg takes COMPONENT=--arg=value, got {item!r}")
        c.beam_overrides.setdefault(component, []).append(beam_arg)
    c.vertex_training, c.training_machine_type = args.vertex_training, args.training_machine_type
    c.accelerator_type, c.accelerator_count, c.vertex_endpoint = (
        args.accelerator_type, args.accelerator_count, args.vertex_endpoint)
    cfg.data.schema_dir = args.schema_dir or c.image_schema_dir
    if args.pipeline_root:
        cfg.runtime.output_dir = args.pipeline_root
    validate_for_cloud(cfg)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfx-image-finetune",
        description="Fine-tune a pretrained Keras image model with TFX and push it for TF Serving.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the whole pipeline locally (LocalDagRunner, Beam on this machine's cores)")
    run.add_argument("--demo", action="store_true",
                     help="the generated demo images, a few epochs, and random init if ImageNet weights cannot be fetched")
    _add_config_flags(run)
    run.add_argument("--output", dest="output_dir", default=DEFAULTS.runtime.output_dir,
                     help="pipeline root, metadata and default serving dir (default %(default)s)")

    compile_ = sub.add_parser("compile", help="compile the pipeline for Vertex AI Pipelines / Kubeflow (KFP v2 JSON)")
    _add_config_flags(compile_)
    _add_cloud_flags(compile_, pipeline_root_required=True)
    compile_.add_argument("--output", dest="spec_file", default="pipeline.json", help="spec file to write")

    submit = sub.add_parser("submit", help="submit a compiled pipeline to Vertex AI Pipelines")
    _add_config_flags(submit)
    _add_cloud_flags(submit, pipeline_root_required=True)
    submit.add_argument("--template", help="compiled spec (default: compile first, to pipeline.json)")
    submit.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="pipeline parameter value, e.g. head_epochs=5 (repeatable)")
    submit.add_argument("--dry-run", action="store_true", help="print the job instead of creating it")
    report = sub.add_parser("report", help="render the latest run's report.html again and print its path")
    report.add_argument("output_dir", metavar="OUTPUT_DIR", help="the run's --output folder")
    predict = sub.add_parser("predict", help="classify image files with a pushed model or a TF Serving server")
    where = predict.add_mutually_exclusive_group(required=True)
    where.add_argument("--model-dir", help="a pushed version folder, or the model folder (its newest version is used)")
    where.add_argument("--server", metavar="HOST:PORT", help="TF Serving: REST port (8501), or gRPC port (8500) "
                                                             "with --grpc")
    predict.add_argument("--grpc", action="store_true", help="use the gRPC PredictionService instead of REST")
    predict.add_argument("--model", default=DEFAULTS.serving.model_name, help="served model name (default %(default)s)")
    predict.add_argument("--version", type=int, help="served version (default: the newest TF Serving serves)")
    predict.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default %(default)s)")
    predict.add_argument("--output", metavar="FILE", help="write file, class and every class's probability to FILE "
                                                          "(CSV or JSON lines, by extension or --format), streaming")
    predict.add_argument("--format", choices=["csv", "jsonl"], help="--output's format (default: its extension)")
    predict.add_argument("--labels", metavar="FILE", help="class names, one per line in id order, for --output's "
                                                          "columns (default: the model's labels.txt with --model-dir)")
    predict.add_argument("images", nargs="+", metavar="IMAGE",
                         help="image files, or folders (their .jpg/.jpeg/.png/.gif/.bmp files, recursively)")
    return parser


def _quiet_library_warnings() -> None:
    """google-api-core warns about Python 3.10 once per package (hundreds of lines); Beam workers inherit this."""
    os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning")
    warnings.simplefilter("ignore", FutureWarning)
    warnings.simplefilter("ignore", DeprecationWarning)


# Exit codes of `run` (README; pipeline/run_guard.py has 1, 130 and 143): the verdict is in the code.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_BLESSED = 0, 1, 2, 3  # EXIT_OK: blessed (run), done (others)


def _run(cfg: PipelineConfig) -> int:
    from pipeline import run_guard  # light: the layout is checked before TF/TFX are imported
    from pipeline.output_lock import output_lock

    run_guard.check_image_layout(cfg)
    reports = []  # the report this run wrote (None if it could not be written)

    def run_pipeline(cfg: PipelineConfig) -> None:
        from pipeline import local_runner

        reports.append(local_runner.run(cfg))

    with output_lock(cfg.runtime.output_dir):  # held until the verdict is read: no other run can change it
        return run_guard.run(cfg, run_pipeline, lambda cfg: _closing_lines(cfg, reports[-1] if reports else None))


def _closing_lines(cfg: PipelineConfig, report: Optional[str]) -> int:
    """What the run did (ingested and skipped files, strategy, baseline, verdict, push, report); the exit code."""
    from pipeline import run_summary  # MLMD and TFMA: only once there is a run to describe

    for line in run_summary.ingest_lines(*run_summary.ingest_report(cfg.metadata_path)):
        print(line)
    print(run_summary.describe(cfg.metadata_path, cfg.serving_model_dir))
    if report:
        print(f"Report: {os.path.abspath(report)}")
    return EXIT_OK if run_summary.blessed(cfg.metadata_path) else EXIT_NOT_BLESSED


def _report(args: argparse.Namespace) -> int:
    """`report OUTPUT_DIR`: render the latest run's report again (e.g. after an upgrade) and print its path."""
    from pipeline import report

    _quiet_library_warnings()
    path = report.write(args.output_dir)
    print(f"Report: {os.path.abspath(path)} (latest: {os.path.abspath(os.path.join(args.output_dir, report.REPORT_FILE))})")
    return EXIT_OK


def _submit(cfg: PipelineConfig, args: argparse.Namespace) -> None:
    from kubeflow import runner

    template = args.template
    if template is None:
        template = runner.compile_pipeline(cfg, "pipeline.json")
    elif not os.path.isfile(template):
        raise ConfigError(f"--template: no such file {template!r}")
    spec = runner.load_template(template)
    values = runner.pipeline_parameters(spec)
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep or name not in values:
            raise ConfigError(f"--param {item!r}: the pipeline's parameters are {sorted(values)}")
        values[name] = type(values[name])(value) if values[name] is not None else value
    request = runner.job_request(spec, template, cfg.cloud.project, cfg.cloud.region, cfg.runtime.output_dir,
                                 cfg.cloud.service_account, values, cfg.runtime.enable_cache)
    if args.dry_run:
        print("Would create Vertex AI PipelineJob:")
        print(json.dumps(request, indent=2))
        return
    job = runner.submit(request)
    print(f"Submitted {job.resource_name}")


def _predict(args: argparse.Namespace) -> int:
    """Print each answer as it comes, each undecodable file on stderr; 1 at the end if any file failed."""
    if (args.grpc or args.version is not None) and not args.server:
        raise ConfigError("--grpc and --version need --server")
    if args.server:
        host, _, port = args.server.rpartition(":")
        if not host or not port.isdigit() or "/" in args.server:
            raise ConfigError(f"--server takes HOST:PORT (e.g. localhost:8501), got {args.server!r}")
    from pipeline import predict
    from pipeline.predict_output import output_format

    if (args.format or args.labels) and not args.output:
        raise ConfigError("--format and --labels need --output FILE")
    try:
        fmt = output_format(args.output, args.format) if args.output else None
    except ValueError as err:
        raise ConfigError(str(err)) from None
    files = predict.image_files(args.images)  # before loading anything: a wrong path fails at once
    _quiet_library_warnings()
    if args.model_dir:
        client = predict.SavedModelClient(args.model_dir)
    elif args.grpc:
        client = predict.GrpcClient(args.server, args.model, args.version, args.timeout)
    else:
        client = predict.RestClient(args.server, args.model, args.version, args.timeout)
    if fmt:
        return _predict_to_file(args, client, files, fmt)
    failed = 0
    for result in predict.classify_files(client, files):
        if isinstance(result, predict.Failure):
            failed += 1
            _report_failure(result)
        else:
            print(f"{result.path}\t{result.label}\t{result.probability:.4f}", flush=True)
    return 1 if failed else 0


def _report_failure(result) -> None:
    print(f"tfx-image-finetune: error: {result.path}: not an image the model can decode: {result.reason}",
          file=sys.stderr, flush=True)


def _predict_to_file(args: argparse.Namespace, client, files, fmt: str) -> int:
    """Rows streamed to --output as each batch is answered; undecodable files on stderr, as without --output."""
    from pipeline import predict
    from pipeline.predict_output import PredictionWriter

    if args.labels:
        with open(args.labels, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
    else:
        names = predict.class_names(args.model_dir) if args.model_dir else None
    failed = 0
    with open(args.output, "w", encoding="utf-8", newline="") as f:
        writer = PredictionWriter(f, fmt, names)
        for result in predict.classify_files(client, files):
            if isinstance(result, predict.Failure):
                failed += 1
                _report_failure(result)
            else:
                writer.write(result.path, result.label, result.probabilities)
    print(f"Wrote {writer.rows} prediction(s) to {args.output} ({fmt})" + (f"; {failed} file(s) failed" if failed else ""))
    return 1 if failed else 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from pipeline.output_lock import OutputInUseError

    try:
        if args.command == "predict":
            return _predict(args)
        if args.command == "report":
            return _report(args)
        cfg = config_from_args(args)
        _quiet_library_warnings()
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        if args.command == "run":
            return _run(cfg)
        elif args.command == "compile":
            from kubeflow import runner

            print(f"Wrote {runner.compile_pipeline(cfg, args.spec_file)}")
        elif args.command == "submit":
            _submit(cfg, args)
    except ConfigError as err:
        parser.exit(EXIT_USAGE, f"tfx-image-finetune: error: {err}\n")
    except (ValueError, FileNotFoundError, ServingError, OutputInUseError) as err:  # ImageIngestError, ...
        logging.debug("failed", exc_info=True)
        parser.exit(EXIT_FAILED, f"tfx-image-finetune: error: {type(err).__name__}: {err}\n")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
