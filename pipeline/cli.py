"""`tfx-image-finetune`: the command line. Heavy modules (TF, TFX) are imported only once a command runs."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from typing import List, Optional

from pipeline.configs import ConfigError, PipelineConfig, demo_config

DEFAULTS = PipelineConfig()


def _run_parser(sub) -> None:
    p = sub.add_parser("run", help="run the whole pipeline locally (LocalDagRunner, Beam DirectRunner)")
    d, m, t, e, r = DEFAULTS.data, DEFAULTS.model, DEFAULTS.training, DEFAULTS.eval, DEFAULTS.runtime
    p.add_argument("--demo", action="store_true",
                   help="the generated demo images, a few epochs, and random init if ImageNet weights cannot be fetched")
    g = p.add_argument_group("data")
    g.add_argument("--data", help="image folder (<root>/<class>/<img>, or already split into train/ and "
                                  "validation/ or eval/ [and test/]); default: generated demo images")
    g.add_argument("--source", choices=["image_folder", "tfrecord"], default=d.source)
    g.add_argument("--tfrecord-pattern", default=d.tfrecord_pattern, help="TFRecord files, relative to --data")
    g.add_argument("--image-key", default=d.image_key)
    g.add_argument("--label-key", default=d.label_key)
    g.add_argument("--num-classes", type=int, help="class count (required with --source tfrecord)")
    g.add_argument("--split", default=f"{d.train_ratio},{d.eval_ratio}",
                   help="train,eval[,test] percentages for an unsplit folder (default %(default)s)")
    g.add_argument("--infer-schema", action="store_true", help="SchemaGen inference instead of schema/")
    g = p.add_argument_group("model")
    g.add_argument("--backbone", default=m.backbone, choices=["xception", "mobilenet_v2", "efficientnet_b0", "resnet50"])
    g.add_argument("--alpha", type=float, default=m.alpha, help="MobileNetV2 width multiplier")
    g.add_argument("--image-size", type=int, help="input side in pixels (default: the backbone's)")
    g.add_argument("--weights", default=m.weights, help="'imagenet', 'none' or a weights file PATH")
    g.add_argument("--strategy", type=int, choices=[1, 2, 3], default=m.strategy,
                   help="1: unfreeze all in phase 2; 2: unfreeze the top part; 3: head only")
    g.add_argument("--unfreeze-fraction", type=float, default=m.unfreeze_fraction)
    g.add_argument("--unfreeze-from-layer")
    g = p.add_argument_group("training")
    g.add_argument("--head-epochs", type=int)
    g.add_argument("--finetune-epochs", type=int)
    g.add_argument("--head-learning-rate", type=float, default=t.head_learning_rate)
    g.add_argument("--finetune-learning-rate", type=float, default=t.finetune_learning_rate)
    g.add_argument("--batch-size", type=int, default=t.batch_size)
    g.add_argument("--patience", type=int, default=t.early_stopping_patience, help="early-stopping patience")
    g = p.add_argument_group("evaluation and push")
    g.add_argument("--accuracy-threshold", type=float, help=f"bless at or above (default {e.accuracy_threshold})")
    g.add_argument("--serving-dir", help="TF Serving model base (default: <output>/serving)")
    g.add_argument("--model-name", default=DEFAULTS.serving.model_name)
    g = p.add_argument_group("runtime")
    g.add_argument("--output", default=r.output_dir, help="pipeline root, metadata and default serving dir")
    g.add_argument("--pipeline-name", default=r.pipeline_name)
    g.add_argument("--no-cache", action="store_true")
    g.add_argument("--beam-mode", default=r.direct_running_mode,
                   choices=["multi_processing", "multi_threading", "in_memory"])


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    cfg = demo_config(args.output) if args.demo else PipelineConfig()
    if args.demo and args.data:
        raise ConfigError("--demo uses the generated images; drop --data or --demo")
    d, m, t = cfg.data, cfg.model, cfg.training
    d.path, d.source, d.tfrecord_pattern = args.data, args.source, args.tfrecord_pattern
    d.image_key, d.label_key, d.num_classes, d.infer_schema = args.image_key, args.label_key, args.num_classes, args.infer_schema
    try:
        ratios = [int(x) for x in args.split.split(",")]
    except ValueError:
        raise ConfigError(f"--split must be integers like 80,20 or 80,10,10, got {args.split!r}") from None
    if len(ratios) not in (2, 3):
        raise ConfigError(f"--split takes two or three percentages, got {args.split!r}")
    d.train_ratio, d.eval_ratio, d.test_ratio = (ratios + [0])[:3]
    m.backbone, m.alpha, m.image_size, m.strategy = args.backbone, args.alpha, args.image_size, args.strategy
    m.unfreeze_fraction, m.unfreeze_from_layer = args.unfreeze_fraction, args.unfreeze_from_layer
    if not args.demo or args.weights != DEFAULTS.model.weights:
        m.weights = args.weights
    t.head_epochs = args.head_epochs if args.head_epochs is not None else t.head_epochs
    t.finetune_epochs = args.finetune_epochs if args.finetune_epochs is not None else t.finetune_epochs
    t.head_learning_rate, t.finetune_learning_rate = args.head_learning_rate, args.finetune_learning_rate
    t.batch_size, t.early_stopping_patience = args.batch_size, args.patience
    if args.accuracy_threshold is not None:
        cfg.eval.accuracy_threshold = args.accuracy_threshold
    cfg.serving.serving_dir, cfg.serving.model_name = args.serving_dir, args.model_name
    r = cfg.runtime
    r.output_dir, r.pipeline_name, r.enable_cache, r.direct_running_mode = (
        args.output, args.pipeline_name, not args.no_cache, args.beam_mode)
    return cfg.validate()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfx-image-finetune",
        description="Fine-tune a pretrained Keras image model with TFX and push it for TF Serving.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _run_parser(sub)
    return parser


def _quiet_library_warnings() -> None:
    """google-api-core warns about Python 3.10 once per package (hundreds of lines); Beam workers inherit this."""
    os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning")
    warnings.simplefilter("ignore", FutureWarning)
    warnings.simplefilter("ignore", DeprecationWarning)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            cfg = config_from_args(args)
            _quiet_library_warnings()
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
            from pipeline import local_runner

            local_runner.run(cfg)
            from pipeline import run_summary

            print(run_summary.describe(cfg.metadata_path, cfg.serving_model_dir))
    except ConfigError as err:
        parser.exit(2, f"tfx-image-finetune: error: {err}\n")
    except (ValueError, FileNotFoundError) as err:  # bad data: ImageIngestError, DataAnomaliesError, ...
        logging.debug("failed", exc_info=True)
        parser.exit(1, f"tfx-image-finetune: error: {type(err).__name__}: {err}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
