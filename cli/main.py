"""`tfx-image-finetune`: the command line. Heavy modules (TF, TFX) are imported only once a command runs."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from typing import List, Optional

from tfx_image_finetune.config import ConfigError, PipelineConfig
from tfx_image_finetune.cli import flags
from tfx_image_finetune.serving.predict import ServingError
from tfx_image_finetune.local.run_guard import (EXIT_FAILED, EXIT_NOT_BLESSED, EXIT_OK, EXIT_SIGINT,  # noqa: F401
                                                EXIT_USAGE)



def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """The typed config from the flags the user gave (cli/flags.py); the demo preset after that, on the
    fields not given. Validated once, by the runner (local_runner.plan, kubeflow.runner.compile_pipeline)."""
    cfg = PipelineConfig()
    cloud = hasattr(args, "spec_file") or hasattr(args, "template")
    tables = flags.all_config_flags() + (flags.CLOUD_FLAGS if cloud else flags.RUN_FLAGS)
    given = flags.fill_config(cfg, args, tables)
    if getattr(args, "output_dir", None):
        cfg.runtime.output_dir = args.output_dir
    if getattr(args, "demo", False):
        if cfg.data.path:
            raise ConfigError("--demo uses the generated images; drop --data or --demo")
        flags.apply_demo_preset(cfg, given)
    if cloud and "runtime.output_dir" not in given:
        raise ConfigError("--pipeline-root is required (the gs:// folder for the run's artifacts)")
    if cloud and "data.schema_dir" not in given:
        cfg.data.schema_dir = cfg.cloud.image_schema_dir
    return cfg


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfx-image-finetune",
        description="Fine-tune a pretrained Keras image model with TFX and push it for TF Serving.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the whole pipeline locally (LocalDagRunner, Beam on this machine's cores)")
    run.add_argument("--demo", action="store_true",
                     help="the generated demo images, one fine-tuning epoch, --tflite int8, and random init if ImageNet "
                          "weights cannot be fetched")
    flags.add_flags(run, [*flags.CONFIG_FLAGS.items(), ("console", flags.RUN_FLAGS)])
    run.add_argument("--output", dest="output_dir", default=flags.DEFAULTS.runtime.output_dir,
                     help="pipeline root, metadata and default serving dir (default %(default)s)")

    compile_ = sub.add_parser("compile", help="compile the pipeline for Vertex AI Pipelines / Kubeflow (KFP v2 JSON)")
    cloud_groups = [*flags.CONFIG_FLAGS.items(), ("cloud", flags.CLOUD_FLAGS)]
    flags.add_flags(compile_, cloud_groups)
    compile_.add_argument("--spec-file", default="pipeline.json", help="the compiled pipeline spec to write")

    submit = sub.add_parser("submit", help="submit a compiled pipeline to Vertex AI Pipelines")
    flags.add_flags(submit, cloud_groups)
    submit.add_argument("--template", help="compiled spec (default: compile first, to pipeline.json)")
    submit.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="pipeline parameter value, e.g. head_epochs=5 (repeatable)")
    submit.add_argument("--dry-run", action="store_true", help="print the job instead of creating it")
    report = sub.add_parser("report", help="render the latest run's report.html again and print its path")
    report.add_argument("output_dir", metavar="OUTPUT_DIR", help="the run's --output folder")
    predict = sub.add_parser("predict", help="classify image files with a pushed model or a TF Serving server")
    where = predict.add_mutually_exclusive_group(required=True)
    where.add_argument("--model-dir", help="a pushed version folder, or the model folder (its newest version is used)")
    where.add_argument("--tflite", metavar="FILE", help="a TFLite file of the --tflite export (class names from "
                                                         "the labels.txt beside it), on one CPU thread")
    where.add_argument("--server", metavar="HOST:PORT", help="TF Serving: REST port (8501), or gRPC port (8500) "
                                                             "with --grpc")
    predict.add_argument("--grpc", action="store_true", help="use the gRPC PredictionService instead of REST")
    predict.add_argument("--model", default=flags.DEFAULTS.serving.model_name, help="served model name (default %(default)s)")
    predict.add_argument("--version", type=int, help="served version (default: the newest TF Serving serves)")
    predict.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default %(default)s)")
    predict.add_argument("--predictions", metavar="FILE", help="write file, class and every class's probability to FILE "
                                                          "(CSV or JSON lines, by extension or --format), streaming")
    predict.add_argument("--format", choices=["csv", "jsonl"], help="--predictions' format (default: its extension)")
    predict.add_argument("--labels", metavar="FILE", help="class names, one per line in id order, for --predictions' "
                                                          "columns (default: the model's labels.txt with --model-dir)")
    predict.add_argument("--max-image-pixels", type=int, default=flags.DEFAULTS.data.max_image_pixels,
                         help="name a file whose header claims more pixels (width x height) as refused, without "
                              "sending it (default %(default)s)")
    predict.add_argument("--explain", metavar="DIR", help="also write DIR/<image name>.explain.png per answered image: "
                                                          "a heat map of what drove its predicted class (integrated "
                                                          "gradients; needs --model-dir)")
    predict.add_argument("images", nargs="+", metavar="IMAGE",
                         help="image files, or folders (their .jpg/.jpeg/.png/.gif/.bmp files, recursively)")
    return parser


def _quiet_library_warnings() -> None:
    """google-api-core warns about Python 3.10 once per package (hundreds of lines); Beam workers inherit this."""
    os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning")
    warnings.simplefilter("ignore", FutureWarning)
    warnings.simplefilter("ignore", DeprecationWarning)


def _run(cfg: PipelineConfig) -> int:
    """The checks (before TF or TFX is imported), then the run in a process of its own (local/supervisor.py)."""
    from tfx_image_finetune.local import runner as local_runner
    from tfx_image_finetune.local import preflight
    from tfx_image_finetune.local.output_lock import output_lock

    preflight.make_output_dir(cfg)
    with output_lock(cfg.runtime.output_dir) as lock_fd:  # held until the verdict is read: no other run changes it
        layout = local_runner.plan(cfg)  # config validated, demo images written, layout checked and counted
        from tfx_image_finetune.local import supervisor  # MLMD: only once the checks are through

        return supervisor.run(cfg, layout, lock_fd)


def _report(args: argparse.Namespace) -> int:
    """`report OUTPUT_DIR`: render the latest run's report again (e.g. after an upgrade) and print its path."""
    from tfx_image_finetune.report import run_report as report

    _quiet_library_warnings()
    path = report.write(args.output_dir)
    print(f"Report: {os.path.abspath(path)} (latest: {os.path.abspath(os.path.join(args.output_dir, report.REPORT_FILE))})")
    return EXIT_OK


def _submit(cfg: PipelineConfig, args: argparse.Namespace) -> None:
    from tfx_image_finetune.kubeflow import runner

    template = args.template
    if template is None:
        template = runner.compile_pipeline(cfg, "pipeline.json")
    else:
        runner.validated(cfg)
    if not os.path.isfile(template):
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
    if args.max_image_pixels < 1:
        raise ConfigError(f"--max-image-pixels must be >= 1, got {args.max_image_pixels}")
    if args.explain and not args.model_dir:
        raise ConfigError("--explain needs --model-dir: explanations take gradients through the model in this process")
    if args.explain and os.path.exists(args.explain) and not os.path.isdir(args.explain):
        raise ConfigError(f"--explain takes a folder; {args.explain!r} is a file")
    from tfx_image_finetune.serving import predict
    from tfx_image_finetune.serving.predict_output import output_format

    if (args.format or args.labels) and not args.predictions:
        raise ConfigError("--format and --labels need --predictions FILE")
    try:
        fmt = output_format(args.predictions, args.format) if args.predictions else None
    except ValueError as err:
        raise ConfigError(str(err)) from None
    files = predict.image_files(args.images)  # before loading anything: a wrong path fails at once
    _quiet_library_warnings()
    if args.tflite and not os.path.isfile(args.tflite):
        raise ConfigError(f"--tflite: no file {args.tflite!r}")
    if args.model_dir:
        client = predict.SavedModelClient(args.model_dir)
    elif args.tflite:
        client = predict.TFLiteClient(args.tflite, args.max_image_pixels)
    elif args.grpc:
        client = predict.GrpcClient(args.server, args.model, args.version, args.timeout)
    else:
        client = predict.RestClient(args.server, args.model, args.version, args.timeout)
    overlays = predict.OverlayWriter(client, args.explain) if args.explain else None
    if fmt:
        return _predict_to_file(args, client, files, fmt, overlays)
    failed = 0
    for result in predict.classify_files(client, files, max_pixels=args.max_image_pixels):
        if isinstance(result, predict.Failure):
            failed += 1
            _report_failure(result)
        else:
            overlay = f"\t{overlays.write(result)}" if overlays else ""
            print(f"{result.path}\t{result.label}\t{result.probability:.4f}{overlay}", flush=True)
    return 1 if failed else 0


def _report_failure(result) -> None:
    from tfx_image_finetune.image_header import TOO_LARGE

    what = "" if result.reason.startswith(TOO_LARGE) else "not an image the model can decode: "
    print(f"tfx-image-finetune: error: {result.path}: {what}{result.reason}", file=sys.stderr, flush=True)


def _predict_to_file(args: argparse.Namespace, client, files, fmt: str, overlays=None) -> int:
    """Rows streamed to --predictions as each batch is answered; undecodable files on stderr, as without it."""
    from tfx_image_finetune.serving import predict
    from tfx_image_finetune.serving.predict_output import PredictionWriter

    if args.labels:
        with open(args.labels, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
    else:
        names = predict.class_names(args.model_dir) if args.model_dir else getattr(client, "names", None)
    failed = 0
    with open(args.predictions, "w", encoding="utf-8", newline="") as f:
        writer = PredictionWriter(f, fmt, names)
        for result in predict.classify_files(client, files, max_pixels=args.max_image_pixels):
            if isinstance(result, predict.Failure):
                failed += 1
                _report_failure(result)
            else:
                writer.write(result.path, result.label, result.probabilities)
                if overlays:
                    overlays.write(result)
    print(f"Wrote {writer.rows} prediction(s) to {args.predictions} ({fmt})" + (f"; {failed} file(s) failed" if failed else "")
          + (f"; {len(overlays.written)} overlay(s) in {args.explain}" if overlays else ""))
    return 1 if failed else 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from tfx_image_finetune.local.output_lock import OutputInUseError

    try:
        if args.command == "predict":
            return _predict(args)
        if args.command == "report":
            return _report(args)
        cfg = config_from_args(args)
        _quiet_library_warnings()
        if args.command == "run":
            return _run(cfg)  # its console and log file: local/console.py
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        if args.command == "compile":
            from tfx_image_finetune.kubeflow import runner

            print(f"Wrote {runner.compile_pipeline(cfg, args.spec_file)}")
        elif args.command == "submit":
            _submit(cfg, args)
    except ConfigError as err:
        parser.exit(EXIT_USAGE, f"tfx-image-finetune: error: {err}\n")
    except (ValueError, FileNotFoundError, ServingError, OutputInUseError) as err:  # ImageIngestError, ...
        logging.debug("failed", exc_info=True)
        parser.exit(EXIT_FAILED, f"tfx-image-finetune: error: {type(err).__name__}: {err}\n")
    except KeyboardInterrupt:  # before a run's process exists (its checks); from then on the supervisor answers
        print("tfx-image-finetune: interrupted by SIGINT before the run started: stopped", file=sys.stderr)
        return EXIT_SIGINT
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
