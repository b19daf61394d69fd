"""The one typed configuration of the pipeline, section by section, and its validation.

Every knob lives here with the recipe's values as defaults (`../shared/recipe.md`); the CLI only overrides
fields. Checks here need nothing but the values: the file-system checks run in local/preflight.py, what crosses a
component boundary is in component_configs.py. No TensorFlow or TFX (`--help` stays instant).
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

from tfx_image_finetune.backbone_specs import BACKBONES, MOBILENET_V2_IMAGENET_ALPHAS
from tfx_image_finetune.data_contract import (CURATED_SCHEMA_DIR, LIMIT_FLAG, MAX_IMAGE_PIXELS, SELECTION_SPLIT,
                                             TEST_SPLIT, TRAIN_SPLIT)


class Strategy(enum.IntEnum):
    """What phase 2 trains, by data size x similarity to ImageNet (the recipe's chart)."""

    WHOLE_NETWORK = 1  # large & dissimilar: unfreeze the whole base
    UPPER_LAYERS = 2  # large & similar, or small & dissimilar: unfreeze the top part of the base
    CLASSIFIER_ONLY = 3  # small & similar: the head only, no phase 2

    def __str__(self) -> str:  # "--strategy 2", "strategy 2" in messages, as the chart numbers them
        return str(self.value)


AUTO_STRATEGY = "auto"  # chosen by the Trainer from data size and a linear probe (trainer/strategy.py)
CLASS_WEIGHTS = ("none", "balanced")
# Which epoch's weights the Trainer keeps: the lowest selection-split loss over both phases, or the last epoch
# of the budget (no early stopping), as the recipe does; auto: last after the logistic head fit, else val_loss
# (trainer/train.py selection_of; benchmarks/quality.py compares them).
SELECTIONS = ("auto", "val_loss", "last")
# How phase 1 fits the head: Adam over head_epochs (the recipe), or one L2 logistic regression on the cached
# features, its penalty chosen by the selection split (trainer/logistic_head.py); auto: logistic on small data
# (the chart's "small": under 1,000 training images, trainer/strategy.py), epochs otherwise.
HEAD_FITS = ("auto", "epochs", "logistic")
TFLITE_MODES = ("none", "float", "int8")  # --tflite
SOURCES = ("image_folder", "tfrecord")
WEIGHTS_KEYWORDS = ("imagenet", "none")
AUTO_BEAM_MODE = "auto"  # in_memory up to AUTO_IN_MEMORY_MAX_IMAGES local images, else multi_processing
BEAM_RUNNING_MODES = (AUTO_BEAM_MODE, "multi_processing", "multi_threading", "in_memory")  # direct_running_mode
# Below this many images, Beam's worker processes (each importing TF: ~15 s) cost more than they save.
AUTO_IN_MEMORY_MAX_IMAGES = 20000


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the field."""


DRIFT_COMPARATORS = ("linf", "js")  # report/drift.py: L-infinity, Jensen-Shannon divergence (TFDV's)

@dataclass
class DataConfig:
    """Where the raw examples come from and how they are split."""

    # Image-folder root (<root>/<class>/<file> or <root>/{train,validation|eval[,test]}/<class>/<file>),
    # or a folder of TFRecords when source == "tfrecord". None: the generated demo data.
    path: Optional[str] = None
    source: str = "image_folder"
    # Hash-split percentages for a root that is not already split (train / selection / test). For a root split
    # into train/ + validation/ (no test/), selection_ratio percent of train/ becomes the selection split.
    train_ratio: int = 80
    selection_ratio: int = 10
    test_ratio: int = 10
    # File pattern (relative to path) of the TFRecords when source == "tfrecord".
    tfrecord_pattern: str = "*"
    image_key: str = "image"
    label_key: str = "label"
    # Class count; None: counted from the image folder's class folders (required for tfrecord input).
    num_classes: Optional[int] = None
    # Folders of an already-split root as "train,validation[,test]", "none" for an unsplit root; None: look.
    # Give it (and num_classes) to compile for the cloud without listing the bucket.
    split_folders: Optional[str] = None
    # Use the curated schema in schema/ (ImportSchemaGen) unless asked to infer one (SchemaGen).
    infer_schema: bool = False
    # Images whose header claims more pixels (width x height) are refused before decoding: skipped at ingest,
    # refused by predict and by the exported model (INVALID_ARGUMENT). Default: PIL's MAX_IMAGE_PIXELS.
    max_image_pixels: int = MAX_IMAGE_PIXELS
    schema_dir: str = CURATED_SCHEMA_DIR
    # Data drift against the replaced model's training data (report/drift.py): a label or image-property
    # distribution further than this (drift_comparator: "linf" L-infinity, "js" Jensen-Shannon) is a WARNING.
    drift_threshold: float = 0.2
    drift_comparator: str = "linf"
    # Stop the run before Transform on such a drift (components/data_drift: a DriftGate node; local runs only).
    fail_on_drift: bool = False


@dataclass
class ModelConfig:
    """Backbone, head and fine-tuning strategy."""

    backbone: str = "xception"
    # Width multiplier; used by MobileNetV2 only.
    alpha: float = 1.0
    # Input side in pixels; None means the backbone's own default (Xception: 150, as in the recipe).
    image_size: Optional[int] = None
    # "imagenet" (Keras download), "none" (random init) or a path to a weights file.
    weights: str = "imagenet"
    # Only `make demo` sets this: continue from random init if the ImageNet download fails.
    allow_random_init: bool = False
    # Strategy.WHOLE_NETWORK (1), UPPER_LAYERS (2), CLASSIFIER_ONLY (3, no phase 2), or "auto": the Trainer
    # picks from data size x similarity to ImageNet (trainer/strategy.py).
    strategy: Union[Strategy, str] = Strategy.WHOLE_NETWORK
    # Strategy 2: fraction of the base's layers (from the top) to unfreeze, or a layer name to unfreeze from.
    unfreeze_fraction: float = 0.25
    unfreeze_from_layer: Optional[str] = None
    dropout: float = 0.2
    # Also export a TFLite classifier (trainer/tflite.py): "none", "float" or "int8" (full-integer, uint8 in/out).
    tflite: str = "none"

    def __post_init__(self) -> None:
        if self.strategy != AUTO_STRATEGY and isinstance(self.strategy, int) and self.strategy in set(Strategy):
            self.strategy = Strategy(self.strategy)  # 1/2/3 from JSON or code: the enum

    @property
    def input_size(self) -> int:
        """The image side the model takes: the given one, else the backbone's default (resolved only here)."""
        if self.image_size is not None:
            return self.image_size
        return BACKBONES[self.backbone].default_size if self.backbone in BACKBONES else 0


@dataclass
class TrainingConfig:
    """The two training phases."""

    head_epochs: int = 20
    finetune_epochs: int = 10
    head_learning_rate: float = 1e-3
    finetune_learning_rate: float = 1e-5
    batch_size: int = 32
    early_stopping_patience: int = 5
    # False: train every epoch of the budget (best weights are still kept); benchmarks compare equal budgets.
    early_stopping: bool = True
    # Phase 1 on the frozen base's outputs for this many augmented views of each training image, computed once
    # (trainer/cached_features.py); 0: phase 1 on images, with fresh augmentation every epoch.
    feature_views: int = 3
    # Decoded images (and phase-1 features) are kept in memory up to this many MiB (estimated from the example
    # count and image size); above it the Trainer streams: JPEG bytes decoded per epoch (trainer/data.py).
    cache_budget_mb: int = 2048
    shuffle_buffer: int = 1000
    seed: int = 42
    # "balanced": weight the loss by inverse class frequency in the train split; "none": every example alike.
    class_weight: str = "none"
    selection: str = "auto"  # SELECTIONS
    head_fit: str = "auto"  # HEAD_FITS
    # After the logistic head fit, with the last weights kept (nothing left for the selection split to choose):
    # refit the head with the penalty the selection split picked, and fine-tune, on train + selection.
    refit: bool = True
    # Start from the latest blessed model's weights when task (classes, image size, features) and network
    # (backbone, alpha) match (trainer/warm_start.py).
    warm_start: bool = False
    # Keras' mixed_float16 policy: float16 compute, float32 variables and outputs (GPU workers; slow on CPU).
    mixed_precision: bool = False


@dataclass
class EvalConfig:
    """The Evaluator's gate."""

    # Lower bound on (binary or sparse categorical) accuracy for a model to be blessed.
    accuracy_threshold: float = 0.6
    # A new model may be at most this much less accurate than the last blessed one.
    max_accuracy_drop: float = 1e-10
    # --tflite: the TFLite model is pushed only if its test accuracy is at most this far below the SavedModel's.
    tflite_max_accuracy_drop: float = 0.01


@dataclass
class ServingConfig:
    """Where blessed models are pushed (TF Serving layout: <serving_dir>/<model_name>/<version>/)."""

    serving_dir: Optional[str] = None  # default: <output_dir>/serving
    model_name: str = "image_classifier"
    # How many pushed versions to keep (oldest removed first); 0 keeps all.
    keep_versions: int = 5
    # Load the staged version and replay its warmup requests before it becomes visible (InfraValidator-style).
    check_servable: bool = True


@dataclass
class RuntimeConfig:
    """Pipeline identity, storage and Beam."""

    pipeline_name: str = "tfx-image-finetune"
    output_dir: str = "outputs"
    enable_cache: bool = True
    # Beam running mode on one machine (pipeline.beam_args): "auto" (in_memory up to AUTO_IN_MEMORY_MAX_IMAGES
    # local images, else multi_processing), multi_processing (a worker process per core), multi_threading,
    # in_memory.
    direct_running_mode: str = AUTO_BEAM_MODE
    direct_num_workers: int = 0  # 0: one per CPU core
    # Everything on the console (Beam, TFX and TF INFO records); by default they go to the run's log file only.
    verbose: bool = False


@dataclass
class CloudConfig:
    """Vertex AI Pipelines / Kubeflow Pipelines (KFP v2): used by `compile` and `submit` only."""

    target: str = "vertex"  # or "kubeflow"
    project: Optional[str] = None
    region: str = "us-central1"
    # The pipeline image (Dockerfile: FROM tensorflow/tfx:1.16.0 + this package from the lock).
    image: Optional[str] = None  # default: gcr.io/<project>/tfx-image-finetune:latest
    # The curated schema's folder inside that image (the Dockerfile copies schema/ there).
    image_schema_dir: str = "/pipeline/schema"
    service_account: Optional[str] = None
    # Beam components (ExampleGen, StatisticsGen, Transform, Evaluator) on Dataflow.
    dataflow: bool = False
    dataflow_machine_type: str = "n1-standard-4"
    dataflow_max_workers: int = 10
    dataflow_temp_location: Optional[str] = None  # default: <output_dir>/tmp
    # Extra Beam args per component id, e.g. {"Transform": ["--machine_type=n1-highmem-8"]}.
    beam_overrides: Dict[str, List[str]] = field(default_factory=dict)
    # Trainer on Vertex AI Training with a GPU worker pool.
    vertex_training: bool = False
    training_machine_type: str = "n1-standard-8"
    accelerator_type: str = "NVIDIA_TESLA_T4"
    accelerator_count: int = 1
    # Machines that train together (MultiWorkerMirroredStrategy): the chief plus training_replicas - 1 workers,
    # each of training_machine_type with its accelerators.
    training_replicas: int = 1
    # Optional Vertex Pusher (model upload + endpoint deploy) beside the file-system push.
    vertex_endpoint: Optional[str] = None

    @property
    def image_uri(self) -> str:
        return self.image or f"gcr.io/{self.project}/tfx-image-finetune:latest"


@dataclass
class PipelineConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    cloud: CloudConfig = field(default_factory=CloudConfig)

    # Derived locations ----------------------------------------------------------------------------------
    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.runtime.output_dir, "pipeline_root")

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.runtime.output_dir, "metadata.sqlite")

    @property
    def serving_model_dir(self) -> str:
        base = self.serving.serving_dir or os.path.join(self.runtime.output_dir, "serving")
        return os.path.join(base, self.serving.model_name)

    @property
    def demo_data_dir(self) -> str:
        return os.path.join(self.runtime.output_dir, "demo_data")

    @property
    def image_size(self) -> int:
        return self.model.input_size

    def split_ratios(self) -> Dict[str, int]:
        d = self.data
        return {TRAIN_SPLIT: d.train_ratio, SELECTION_SPLIT: d.selection_ratio, TEST_SPLIT: d.test_ratio}

    def validate(self) -> "PipelineConfig":
        """Raise ConfigError naming the field for any value that cannot work (paths: local/preflight.py)."""
        d, m, t, e = self.data, self.model, self.training, self.eval
        _check(d.source in SOURCES, "data.source", f"must be one of {SOURCES}, got {d.source!r}")
        _check(d.source == "image_folder" or d.path, "data.path", "is required when data.source is 'tfrecord'")
        _check(d.source == "image_folder" or (d.num_classes or 0) >= 2, "data.num_classes",
               "is required (>= 2) when data.source is 'tfrecord'")
        _check(d.num_classes is None or d.num_classes >= 2, "data.num_classes", "must be >= 2")
        _check(0 < d.drift_threshold <= 1, "data.drift_threshold (--drift-threshold)",
               f"must be in (0, 1], got {d.drift_threshold}")
        _check(d.drift_comparator in DRIFT_COMPARATORS, "data.drift_comparator (--drift-comparator)",
               f"must be one of {DRIFT_COMPARATORS}, got {d.drift_comparator!r}")
        _check(d.max_image_pixels >= 1, f"data.max_image_pixels ({LIMIT_FLAG})",
               f"must be >= 1, got {d.max_image_pixels}")
        for name in ("train_ratio", "selection_ratio", "test_ratio"):
            _check(getattr(d, name) > 0, f"data.{name}", f"must be > 0 (train, selection and test), got {getattr(d, name)}")
        _check_ratios_sum(self.split_ratios())
        _check(m.backbone in BACKBONES, "model.backbone", f"must be one of {sorted(BACKBONES)}, got {m.backbone!r}")
        _check(m.strategy in set(Strategy) or m.strategy == AUTO_STRATEGY, "model.strategy",
               f"must be 1, 2, 3 or 'auto', got {m.strategy!r}")
        _check(t.class_weight in CLASS_WEIGHTS, "training.class_weight", f"must be one of {CLASS_WEIGHTS}")
        _check(t.selection in SELECTIONS, "training.selection", f"must be one of {SELECTIONS}")
        _check(t.head_fit in HEAD_FITS, "training.head_fit", f"must be one of {HEAD_FITS}")
        _check(t.head_fit != "logistic" or t.feature_views > 0, "training.head_fit (--head-fit)",
               "logistic fits the cached features: it needs --feature-views > 0")
        _check(0.0 < m.unfreeze_fraction <= 1.0, "model.unfreeze_fraction", "must be in (0, 1]")
        _check(0.0 <= m.dropout < 1.0, "model.dropout", "must be in [0, 1)")
        _check(m.alpha > 0, "model.alpha", "must be > 0")
        _check_image_size(m.image_size, m.backbone)
        if m.backbone == "mobilenet_v2" and m.weights == "imagenet":
            _check(m.alpha in MOBILENET_V2_IMAGENET_ALPHAS, "model.alpha (--alpha)",
                   f"must be one of {MOBILENET_V2_IMAGENET_ALPHAS} with ImageNet weights, got {m.alpha}")
        _check(t.head_epochs >= 1, "training.head_epochs", "must be >= 1")
        _check(t.finetune_epochs >= 0, "training.finetune_epochs", "must be >= 0")
        _check(t.batch_size >= 1, "training.batch_size", "must be >= 1")
        _check(t.cache_budget_mb >= 0, "training.cache_budget_mb (--cache-budget-mb)",
               f"must be >= 0 (0: always stream), got {t.cache_budget_mb}")
        _check(0 <= t.feature_views <= 64, "training.feature_views", f"must be in 0..64, got {t.feature_views}")
        _check(t.early_stopping_patience >= 0, "training.early_stopping_patience (--patience)",
               f"must be >= 0, got {t.early_stopping_patience}")
        _check(self.serving.keep_versions >= 0, "serving.keep_versions (--keep-versions)",
               f"must be >= 0 (0 keeps all), got {self.serving.keep_versions}")
        _check(t.head_learning_rate > 0 and t.finetune_learning_rate > 0, "training.*_learning_rate", "must be > 0")
        _check(0.0 <= e.accuracy_threshold <= 1.0, "eval.accuracy_threshold", "must be in [0, 1]")
        _check(m.tflite in TFLITE_MODES, "model.tflite (--tflite)", f"must be one of {TFLITE_MODES}, got {m.tflite!r}")
        _check(0.0 <= e.tflite_max_accuracy_drop <= 1.0, "eval.tflite_max_accuracy_drop (--tflite-max-accuracy-drop)",
               f"must be in [0, 1], got {e.tflite_max_accuracy_drop}")
        _check(
            self.runtime.direct_running_mode in BEAM_RUNNING_MODES,
            "runtime.direct_running_mode",
            f"must be one of {BEAM_RUNNING_MODES}",
        )
        if d.split_folders and d.split_folders != "none":
            _check(len(d.split_folders.split(",")) in (2, 3), "data.split_folders",
                   f"must be 'train,validation[,test]' or 'none', got {d.split_folders!r}")
        return self


def validate_for_cloud(cfg: PipelineConfig) -> PipelineConfig:
    """The extra rules of a cloud run: everything on a shared file system, nothing to discover by listing."""
    c, d = cfg.cloud, cfg.data
    _check(c.target in ("vertex", "kubeflow"), "cloud.target", f"must be 'vertex' or 'kubeflow', got {c.target!r}")
    scheme = "gs://" if c.target == "vertex" else "://"
    where = "a gs:// URI" if c.target == "vertex" else "a remote URI (gs://, s3://, ...)"
    _check(c.target != "vertex" or c.project, "cloud.project", "is required for the vertex target (--project)")
    _check(c.image or c.project, "cloud.image", "is required (--image) when no project names the default image")
    _check(scheme in cfg.runtime.output_dir, "runtime.output_dir",
           f"must be {where} for the {c.target} target, got {cfg.runtime.output_dir!r} (--output)")
    _check(d.path and scheme in d.path, "data.path", f"must be {where} for the {c.target} target, got {d.path!r}")
    if cfg.serving.serving_dir:
        _check(scheme in cfg.serving.serving_dir, "serving.serving_dir", f"must be {where}")
    _check(d.source == "tfrecord" or d.split_folders, "data.split_folders",
           "is required for a cloud compile (--split-folders train,validation or none)")
    _check(d.num_classes, "data.num_classes", "is required for a cloud compile (--num-classes)")
    _check(not d.fail_on_drift, "data.fail_on_drift (--fail-on-drift)", "is for local runs only: finding the "
           "replaced model's data takes a resolver strategy that Vertex AI / Kubeflow pipelines cannot compile")
    _check(c.accelerator_count >= 1 or not c.vertex_training, "cloud.accelerator_count", "must be >= 1")
    _check(c.training_replicas >= 1, "cloud.training_replicas (--training-replicas)",
           f"must be >= 1, got {c.training_replicas}")
    _check(c.training_replicas == 1 or c.vertex_training, "cloud.training_replicas (--training-replicas)",
           "needs --vertex-training (the workers are Vertex AI Training replicas)")
    return cfg


def _check_ratios_sum(ratios: Dict[str, int]) -> None:
    """Split percentages (however many the scheme has) must add up to 100."""
    total = sum(ratios.values())
    shown = ",".join(str(v) for v in ratios.values())
    _check(total == 100, "data split ratios (--split)",
           f"must sum to 100, got {shown} = {total} ({', '.join(ratios)})")


def _check_image_size(image_size: Optional[int], backbone: str) -> None:
    """None means the backbone's default; anything given must be in [the backbone's minimum, 2048]."""
    if image_size is None or backbone not in BACKBONES:
        return
    low = BACKBONES[backbone].min_size
    _check(low <= image_size <= MAX_IMAGE_SIZE, "model.image_size (--image-size)",
           f"must be in [{low}, {MAX_IMAGE_SIZE}] pixels for {backbone}, got {image_size}")


MAX_IMAGE_SIZE = 2048


def _check(ok: Any, field_name: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{field_name} {message}")
