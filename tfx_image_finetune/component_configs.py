"""What crosses a component boundary, typed: Transform's and the Trainer's `custom_config` and the training values
that are pipeline (runtime) parameters on Vertex AI / Kubeflow. Each travels as a JSON-able dict and is rebuilt on
the other side; stdlib only."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from tfx_image_finetune.config import ConfigError, ModelConfig, PipelineConfig, TrainingConfig
from tfx_image_finetune.data_contract import MAX_IMAGE_PIXELS

# The training values that are pipeline (runtime) parameters on Vertex AI / Kubeflow, with their types:
# components/hyperparameters turns them into the Trainer's HyperParameters input.
HYPERPARAMETERS = {
    "head_epochs": int,
    "finetune_epochs": int,
    "head_learning_rate": float,
    "finetune_learning_rate": float,
}

# The Trainer's custom_config key, added at execution by components/trainer: {"train"|"eval": {class: examples}}
# from the ExampleGen's ingest report, so run_fn need not count the labels with a pass over the TFRecords.
EXAMPLES_PER_CLASS_KEY = "examples_per_class"


def check_hyperparameters(values: Mapping[str, Any]) -> Dict[str, Any]:
    """The runtime parameters, typed; a value no training can use is an error naming the parameter."""
    typed = {name: kind(values[name]) for name, kind in HYPERPARAMETERS.items()}
    for name, value in typed.items():
        if value < 0 or (name.endswith("learning_rate") and value == 0) or (name == "head_epochs" and value < 1):
            raise ConfigError(f"pipeline parameter {name} has an unusable value {value}")
    return typed


@dataclass(frozen=True)
class TransformConfig:
    """Transform's `custom_config`: the raw feature keys, the image side and the pixel limit (the exported
    model carries both in its graph), nothing about training."""

    image_key: str
    label_key: str
    image_size: int
    max_image_pixels: int = MAX_IMAGE_PIXELS

    @classmethod
    def of(cls, cfg: PipelineConfig) -> "TransformConfig":
        """Only what Transform's graph uses, so a training change keeps its cache."""
        return cls(cfg.data.image_key, cfg.data.label_key, cfg.image_size, cfg.data.max_image_pixels)

    def to_custom_config(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_custom_config(cls, custom_config: Mapping[str, Any]) -> "TransformConfig":
        return cls(str(custom_config["image_key"]), str(custom_config["label_key"]), int(custom_config["image_size"]),
                   int(custom_config.get("max_image_pixels") or MAX_IMAGE_PIXELS))


@dataclass(frozen=True)
class TrainerConfig:
    """What the Trainer needs, typed: the examples as Transform read them, the model, the training and the class
    count (no data paths or split ratios: it never reads them). It crosses the component boundary as a JSON-able
    `custom_config` and is what an exported model's training summary records."""

    transform: TransformConfig
    model: ModelConfig
    training: TrainingConfig
    num_classes: int

    @classmethod
    def of(cls, cfg: PipelineConfig, num_classes: int) -> "TrainerConfig":
        return cls(TransformConfig.of(cfg), cfg.model, cfg.training, num_classes)

    @property
    def image_size(self) -> int:
        return self.transform.image_size

    def to_custom_config(self) -> Dict[str, Any]:
        return {"transform": self.transform.to_custom_config(), "model": dataclasses.asdict(self.model),
                "training": dataclasses.asdict(self.training), "num_classes": self.num_classes}

    @classmethod
    def from_custom_config(cls, custom_config: Mapping[str, Any]) -> "TrainerConfig":
        """The typed config back; keys this version does not know (other components' extras) are ignored."""
        def build(kind, values):
            names = {f.name for f in dataclasses.fields(kind)}
            return kind(**{k: v for k, v in (values or {}).items() if k in names})

        transform = TransformConfig.from_custom_config(custom_config["transform"])
        model = build(ModelConfig, custom_config["model"])
        if model.image_size is None:
            model = dataclasses.replace(model, image_size=transform.image_size)
        return cls(transform, model, build(TrainingConfig, custom_config["training"]),
                   int(custom_config["num_classes"]))

    def with_hyperparameters(self, values: Optional[Mapping[str, Any]]) -> "TrainerConfig":
        """The pipeline's (runtime) hyperparameters applied over the training config: the one place they win."""
        if not values:
            return self
        known = {name: values[name] for name in HYPERPARAMETERS if name in values}
        return dataclasses.replace(self, training=dataclasses.replace(self.training, **check_hyperparameters(
            {**{n: getattr(self.training, n) for n in HYPERPARAMETERS}, **known})))
