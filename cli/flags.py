"""The command line's config flags: one table of (flag, config field, help), filled into the config in one loop.

Every flag's argparse default is SUPPRESS, so the parsed namespace holds only what the user typed: the config's
own defaults stay the one source of defaults (shown in --help from `PipelineConfig()`), and presets applied
after parsing (the demo's) know which fields the user set. Import-light: no TensorFlow, no TFX.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable, Iterable, List, Optional, Set, Tuple

from tfx_image_finetune.backbone_specs import BACKBONES
from tfx_image_finetune.config import (AUTO_STRATEGY, BEAM_RUNNING_MODES, CLASS_WEIGHTS, DRIFT_COMPARATORS, HEAD_FITS,
                                       SELECTIONS, SOURCES, TFLITE_MODES, ConfigError, PipelineConfig, Strategy)

DEFAULTS = PipelineConfig()

# `make demo` / `run --demo`: the generated sample, the default recipe with one fine-tuning epoch (its 240 images
# are a small set: phase 1 is the logistic head fit, no epochs), and an honest fallback (random init, said so
# loudly) where the ImageNet weights cannot be fetched. Applied after parsing, to every field the command line
# did not set.
DEMO_PRESET = {
    "model.allow_random_init": True,
    "training.finetune_epochs": 1,
    "model.tflite": "int8",
}


def get_field(cfg: PipelineConfig, path: str) -> Any:
    """The field at "section.field" (how the flag table and the demo preset name fields)."""
    section, name = path.split(".")
    return getattr(getattr(cfg, section), name)


def set_field(cfg: PipelineConfig, path: str, value: Any) -> None:
    section, name = path.split(".")
    setattr(getattr(cfg, section), name, value)


def apply_demo_preset(cfg: PipelineConfig, given: Set[str] = frozenset()) -> PipelineConfig:
    """Set DEMO_PRESET's fields ("section.field") on `cfg`, except those named in `given`."""
    for path, value in DEMO_PRESET.items():
        if path not in given:
            set_field(cfg, path, value)
    return cfg


@dataclass(frozen=True)
class Flag:
    name: str  # "--head-epochs"
    field: str  # "training.head_epochs"; several fields, comma-separated, take a tuple value in order
    help: str
    type: Optional[Callable[[str], Any]] = None
    choices: Optional[Tuple[Any, ...]] = None
    switch: Optional[bool] = None  # a flag without a value that sets the field to this
    repeatable: bool = False  # may be given several times: the field gets the list
    show_default: bool = True  # False where the config's default is not what the command uses

    @property
    def dest(self) -> str:
        return self.name.lstrip("-").replace("-", "_")

    @property
    def fields(self) -> List[str]:
        return self.field.split(",")


def _split(value: str) -> Tuple[int, int, int]:
    try:
        ratios = tuple(int(x) for x in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--split must be three integers like 80,10,10, got {value!r}") from None
    if len(ratios) != 3:
        raise argparse.ArgumentTypeError(f"--split takes three percentages (train,selection,test), got {value!r}")
    return ratios  # type: ignore[return-value]


def _strategy(value: str):
    """--strategy: 1, 2, 3 (the chart's numbers, Strategy's values) or auto."""
    if value == AUTO_STRATEGY:
        return value
    try:
        return Strategy(int(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 1, 2, 3 or {AUTO_STRATEGY}, got {value!r}") from None


def _beam_overrides(items: List[str]):
    overrides: dict = {}
    for item in items:
        component, sep, beam_arg = item.partition("=")
        if not sep or not beam_arg.startswith("--"):
            raise ConfigError(f"--beam-arg takes COMPONENT=--arg=value, got {item!r}")
        overrides.setdefault(component, []).append(beam_arg)
    return overrides


CONFIG_FLAGS = {
    "data": [
        Flag("--data", "data.path", "image folder (<root>/<class>/<img>, or already split into train/ and "
                                    "validation/ or eval/ [and test/]); default: generated demo images"),
        Flag("--source", "data.source", "image_folder or tfrecord (a folder of tf.Example TFRecords)",
             choices=SOURCES),
        Flag("--tfrecord-pattern", "data.tfrecord_pattern", "TFRecord files, relative to --data"),
        Flag("--image-key", "data.image_key", "the encoded-image feature"),
        Flag("--label-key", "data.label_key", "the label feature (class names or integer ids)"),
        Flag("--num-classes", "data.num_classes", "class count (required with --source tfrecord and in the "
                                                  "cloud)", type=int),
        Flag("--split", "data.train_ratio,data.selection_ratio,data.test_ratio",
             "train,selection,test percentages of an unsplit folder; for a root split into train/ + validation/ "
             "only, the selection percentage of train/ is selection", type=_split),
        Flag("--split-folders", "data.split_folders", "'train,validation[,test]' for an already-split root, "
                                                      "'none' for an unsplit one (default: look at the folder)"),
        Flag("--infer-schema", "data.infer_schema", "SchemaGen inference instead of schema/", switch=True),
        Flag("--max-image-pixels", "data.max_image_pixels",
             "refuse images whose header claims more pixels (width x height), before decoding: skipped at "
             "ingest, INVALID_ARGUMENT from the exported model", type=int),
        Flag("--drift-threshold", "data.drift_threshold", "a label or image-property distribution further than "
             "this from the replaced model's training data is a drift WARNING", type=float),
        Flag("--drift-comparator", "data.drift_comparator", "drift distance: linf (L-infinity) or js "
             "(Jensen-Shannon divergence), as TFDV's comparators", choices=DRIFT_COMPARATORS),
        Flag("--fail-on-drift", "data.fail_on_drift", "stop the run before training on such a drift (local runs)",
             switch=True),
    ],
    "model": [
        Flag("--backbone", "model.backbone", "ImageNet backbone", choices=tuple(BACKBONES)),
        Flag("--alpha", "model.alpha", "MobileNetV2 width multiplier", type=float),
        Flag("--image-size", "model.image_size", "input side in pixels (default: the backbone's)", type=int),
        Flag("--weights", "model.weights", "'imagenet', 'none' or a weights file PATH"),
        Flag("--strategy", "model.strategy", "1: unfreeze the whole base in phase 2; 2: unfreeze its upper layers; "
                                             "3: classifier only; auto: from data size and a linear probe of the "
                                             "frozen backbone", type=_strategy),
        Flag("--unfreeze-fraction", "model.unfreeze_fraction", "strategy 2: top fraction of the base's layers",
             type=float),
        Flag("--unfreeze-from-layer", "model.unfreeze_from_layer", "strategy 2: unfreeze from this layer up"),
        Flag("--tflite", "model.tflite", "also export a TFLite model: float, or int8 (full-integer, uint8 in and "
                                         "out); pushed beside the version if it passes its own accuracy gate",
             choices=TFLITE_MODES),
    ],
    "training": [
        Flag("--head-epochs", "training.head_epochs", "phase 1 epochs (head only), when phase 1 is fitted by epochs "
                                                      "(--head-fit)", type=int),
        Flag("--finetune-epochs", "training.finetune_epochs", "phase 2 epochs (unfrozen)", type=int),
        Flag("--head-learning-rate", "training.head_learning_rate", "phase 1 Adam learning rate (--head-fit epochs)",
             type=float),
        Flag("--finetune-learning-rate", "training.finetune_learning_rate", "phase 2 Adam learning rate",
             type=float),
        Flag("--batch-size", "training.batch_size", "batch size", type=int),
        Flag("--feature-views", "training.feature_views",
             "phase 1 on cached base outputs of N augmented views per image (0: on images, fresh augmentation "
             "every epoch; docs/configuration.md)", type=int),
        Flag("--cache-budget-mb", "training.cache_budget_mb",
             "memory for decoded images and phase-1 features; above it the Trainer streams", type=int),
        Flag("--patience", "training.early_stopping_patience", "early-stopping patience (epochs)", type=int),
        Flag("--no-early-stopping", "training.early_stopping", "train every epoch of the budget (the best "
                                                               "weights are still kept)", switch=False),
        Flag("--selection", "training.selection", "the weights kept: val_loss, the epoch with the lowest selection-"
                                                  "split loss (early stopping on it); last, the budget's last epoch; "
                                                  "auto, last after the logistic head fit, else val_loss",
             choices=SELECTIONS),
        Flag("--head-fit", "training.head_fit", "phase 1: epochs, Adam over --head-epochs; logistic, one L2 logistic "
                                                "regression on the cached features (trainer/logistic_head.py); auto, "
                                                "logistic under 1,000 training images",
             choices=HEAD_FITS),
        Flag("--no-refit", "training.refit", "after the logistic head fit with the last weights kept, train on "
                                             "train alone (default: the head is refitted, and fine-tuned, on train "
                                             "+ selection once the selection split chose its penalty)", switch=False),
        Flag("--seed", "training.seed", "seed of the training's randomness (initial head, shuffling, augmentation)",
             type=int),
        Flag("--class-weight", "training.class_weight", "balanced: weight the loss by inverse class frequency",
             choices=CLASS_WEIGHTS),
        Flag("--warm-start", "training.warm_start", "start from the latest blessed model's weights when "
                                                    "it solves the same task (class list, image size, features) with the same "
                                                    "network (backbone, alpha)", switch=True),
        Flag("--mixed-precision", "training.mixed_precision", "float16 compute with float32 variables and "
                                                              "outputs (Keras mixed_float16; for GPU workers)",
             switch=True),
    ],
    "evaluation and push": [
        Flag("--accuracy-threshold", "eval.accuracy_threshold", "bless at or above this accuracy", type=float),
        Flag("--tflite-max-accuracy-drop", "eval.tflite_max_accuracy_drop",
             "--tflite: push the TFLite model only if its test accuracy is at most this far below the "
             "SavedModel's (0.01: 1 point)", type=float),
        Flag("--serving-dir", "serving.serving_dir", "TF Serving model base (default: <output>/serving)"),
        Flag("--model-name", "serving.model_name", "served model name"),
        Flag("--keep-versions", "serving.keep_versions", "pushed versions to keep, oldest removed first; 0 keeps "
                                                         "all", type=int),
        Flag("--no-servable-check", "serving.check_servable", "push without first loading the model and "
                                                              "replaying its warmup requests", switch=False),
    ],
    "runtime": [
        Flag("--pipeline-name", "runtime.pipeline_name", "pipeline name in MLMD"),
        Flag("--beam-mode", "runtime.direct_running_mode",
             "Beam on one machine's cores (local runs; cloud tasks without --dataflow): auto (in the process up "
             "to 20,000 images, else a worker process per core), multi_processing, multi_threading, in_memory",
             choices=BEAM_RUNNING_MODES),
        Flag("--no-cache", "runtime.enable_cache", "run every component again (no MLMD cache)", switch=False),
    ],
}

CLOUD_FLAGS = [
    Flag("--target", "cloud.target", "vertex or kubeflow", choices=("vertex", "kubeflow")),
    Flag("--pipeline-root", "runtime.output_dir", "gs:// folder for artifacts (the pipeline root lives below it); "
                                                  "required", show_default=False),
    Flag("--project", "cloud.project", "Google Cloud project (required for vertex)"),
    Flag("--region", "cloud.region", "Google Cloud region"),
    Flag("--image", "cloud.image", "pipeline image URI (default gcr.io/<project>/tfx-image-finetune:latest)"),
    Flag("--service-account", "cloud.service_account", "service account of the pipeline job"),
    Flag("--schema-dir", "data.schema_dir", "folder with schema.pbtxt as the pipeline image sees it (default: "
                                            f"the copy the Dockerfile puts at {DEFAULTS.cloud.image_schema_dir})",
         show_default=False),
    Flag("--dataflow", "cloud.dataflow", "run the Beam components on Dataflow", switch=True),
    Flag("--dataflow-machine-type", "cloud.dataflow_machine_type", "Dataflow worker machine type"),
    Flag("--dataflow-max-workers", "cloud.dataflow_max_workers", "Dataflow worker limit", type=int),
    Flag("--dataflow-temp-location", "cloud.dataflow_temp_location", "default: <pipeline-root>/tmp"),
    Flag("--beam-arg", "cloud.beam_overrides", "extra Beam arg for one component as COMPONENT=ARG, e.g. "
                                               "Transform=--machine_type=n1-highmem-8 (repeatable)",
         repeatable=True),
    Flag("--vertex-training", "cloud.vertex_training", "Trainer on Vertex AI Training (GPU pool)", switch=True),
    Flag("--training-machine-type", "cloud.training_machine_type", "Vertex AI Training machine type"),
    Flag("--accelerator-type", "cloud.accelerator_type", "Vertex AI Training accelerator"),
    Flag("--accelerator-count", "cloud.accelerator_count", "accelerators per worker", type=int),
    Flag("--training-replicas", "cloud.training_replicas", "machines that train together with "
                                                           "MultiWorkerMirroredStrategy: the chief and N-1 workers "
                                                           "(needs --vertex-training)", type=int),
    Flag("--vertex-endpoint", "cloud.vertex_endpoint", "also upload the blessed model to Vertex AI and deploy "
                                                       "it to this endpoint"),
]
# Values that need more than a type to become a field.
CONVERT = {"--beam-arg": _beam_overrides}
RUN_FLAGS = [Flag("--verbose", "runtime.verbose", "everything on the console (Beam, TFX and TF INFO records), "
                                                  "not only in the run's log file", switch=True)]


def default_shown(flag: Flag) -> str:
    """The config's default as --help and docs/configuration.md show it ('' for switches and unset fields)."""
    values = [get_field(DEFAULTS, f) for f in flag.fields]
    if flag.switch is not None or values == [None] or flag.repeatable or not flag.show_default:
        return ""
    return ",".join(str(v) for v in values)


def _default_text(flag: Flag) -> str:
    shown = default_shown(flag)
    return f" (default {shown})" if shown else ""


def add_flags(parser: argparse.ArgumentParser, groups: Iterable[Tuple[str, List[Flag]]]) -> None:
    for title, flags in groups:
        group = parser.add_argument_group(title)
        for flag in flags:
            kwargs: dict = dict(dest=flag.dest, default=argparse.SUPPRESS, help=flag.help + _default_text(flag))
            if flag.switch is not None:
                kwargs["action"] = "store_true"
            elif flag.repeatable:
                kwargs.update(action="append", metavar="COMPONENT=ARG")
            else:
                kwargs.update(type=flag.type, choices=flag.choices)
            group.add_argument(flag.name, **kwargs)


def fill_config(cfg: PipelineConfig, args: argparse.Namespace, flags: Iterable[Flag]) -> Set[str]:
    """Copies every flag the user gave into its field(s); returns the fields set."""
    given: Set[str] = set()
    for flag in flags:
        if not hasattr(args, flag.dest):
            continue
        value = getattr(args, flag.dest)
        if flag.switch is not None:
            value = flag.switch
        value = CONVERT.get(flag.name, lambda v: v)(value)
        values = value if len(flag.fields) > 1 else (value,)
        for path, item in zip(flag.fields, values):
            set_field(cfg, path, item)
            given.add(path)
    return given


def all_config_flags() -> List[Flag]:
    return [flag for flags in CONFIG_FLAGS.values() for flag in flags]


def fields_of_table() -> Tuple[str, ...]:
    """Every config field some flag sets (tests check each is a real field)."""
    return tuple(f for flag in all_config_flags() + CLOUD_FLAGS + RUN_FLAGS for f in flag.fields)
