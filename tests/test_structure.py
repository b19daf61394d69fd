"""The package's shape: one import direction, a TensorFlow-free bottom, typed config across component boundaries."""

import ast
import dataclasses
import json
import os
import re
import subprocess
import sys

import pytest

from tfx_image_finetune.component_configs import HYPERPARAMETERS, TrainerConfig, TransformConfig
from tfx_image_finetune.config import ConfigError, PipelineConfig, Strategy
from tfx_image_finetune.cli import flags
from tfx_image_finetune.cli.main import build_parser, config_from_args
from tests.conftest import REPO

# Top to bottom; a folder may import its own layer's folder and the layers below, never one above or beside it.
LAYERS = (("cli",), ("local", "kubeflow"), ("report", "serving"), ("pipeline",), ("components", "trainer"),
          ("schema",))
FOLDERS = tuple(folder for layer in LAYERS for folder in layer) + ("tfx_image_finetune",)
OLD_TOP_LEVEL = FOLDERS[:-1]
BOTTOM = {"data_contract.py": {"tfx_image_finetune.schema"}, "backbone_specs.py": set(),
          "config.py": {"tfx_image_finetune.data_contract", "tfx_image_finetune.backbone_specs"},
          "component_configs.py": {"tfx_image_finetune.config", "tfx_image_finetune.data_contract"},
          "serving_contract.py": set(), "image_header.py": {"tfx_image_finetune.data_contract"},
          "metadata_store.py": set()}


def _imports(path):
    """Every module name `path` imports (at any depth: lazy imports count too)."""
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def _modules(*folders):
    for folder in folders:
        for root, _, files in os.walk(os.path.join(REPO, folder)):
            for name in files:
                if name.endswith(".py"):
                    yield os.path.join(root, name)


def test_imports_run_one_way():
    """cli -> local, kubeflow -> report, serving -> pipeline -> components, trainer -> the package's own modules."""
    for depth, layer in enumerate(LAYERS):
        allowed = {f for lower in LAYERS[depth + 1:] for f in lower}
        for folder in layer:
            for path in _modules(folder):
                own = {m.split(".")[1] for m in _imports(path) if m.startswith("tfx_image_finetune.")}
                bad = {f for f in own if f in FOLDERS[:-1] and f != folder and f not in allowed}
                assert not bad, f"{os.path.relpath(path, REPO)} imports {sorted(bad)}, a layer above or beside it"
    for name, allowed in BOTTOM.items():
        own = {m for m in _imports(os.path.join(REPO, "tfx_image_finetune", name)) if m.startswith("tfx_image_finetune")}
        assert own <= allowed, f"{name} imports {own - allowed}"
    assert sorted(BOTTOM) == sorted(n for n in os.listdir(os.path.join(REPO, "tfx_image_finetune"))
                                    if n.endswith(".py") and n != "__init__.py")
    setup = open(os.path.join(REPO, "setup.py")).read()
    assert sorted(re.findall(r'"(\w+)"', re.search(r"FOLDERS = \[(.*?)\]", setup, re.S).group(1))) == sorted(
        FOLDERS[:-1]), "every folder setup.py installs has its place in LAYERS"


def test_nothing_imports_the_old_top_level_names():
    for path in _modules(*FOLDERS, "tests", "benchmarks"):
        bad = [m for m in _imports(path) if m.split(".")[0] in OLD_TOP_LEVEL]
        assert not bad, f"{os.path.relpath(path, REPO)} imports {bad}"


def test_the_bottom_and_the_cli_import_no_tensorflow_or_tfx():
    code = ("import sys, tfx_image_finetune.config, tfx_image_finetune.serving_contract, "
            "tfx_image_finetune.image_header, tfx_image_finetune.metadata_store, "
            "tfx_image_finetune.cli.main, tfx_image_finetune.kubeflow.runner; "
            "heavy = sorted(m for m in ('tensorflow', 'tfx', 'apache_beam', 'tf_keras') if m in sys.modules); "
            "print(heavy); sys.exit(1 if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_trainer_config_round_trips_through_custom_config_and_json():
    cfg = PipelineConfig()
    cfg.model.backbone, cfg.model.alpha, cfg.model.strategy = "mobilenet_v2", 0.35, Strategy.UPPER_LAYERS
    cfg.training.head_epochs = 7
    sent = TrainerConfig.of(cfg, 3)
    assert set(sent.to_custom_config()) == {"transform", "model", "training", "num_classes"}  # no data paths
    received = TrainerConfig.from_custom_config(json.loads(json.dumps(sent.to_custom_config())))
    assert received.model.strategy is Strategy.UPPER_LAYERS and received.num_classes == 3
    assert received.image_size == 160  # the backbone's default, resolved once and carried
    assert dataclasses.replace(received, model=dataclasses.replace(received.model, image_size=None)) == sent
    tuned = received.with_hyperparameters({"head_epochs": 2, "finetune_learning_rate": 1e-4})
    assert (tuned.training.head_epochs, tuned.training.finetune_learning_rate) == (2, 1e-4)
    assert tuned.training.finetune_epochs == cfg.training.finetune_epochs  # the rest stays the config's
    with pytest.raises(ConfigError, match="pipeline parameter head_epochs has an unusable value 0"):
        received.with_hyperparameters({"head_epochs": 0})
    assert set(HYPERPARAMETERS) <= {f.name for f in dataclasses.fields(cfg.training)}


def test_transform_gets_only_what_its_graph_uses():
    cfg = PipelineConfig()
    assert TransformConfig.of(cfg).to_custom_config() == {"image_key": "image", "label_key": "label", "image_size": 150,
                                                          "max_image_pixels": 89_478_485}
    assert TransformConfig.from_custom_config(TransformConfig.of(cfg).to_custom_config()) == TransformConfig.of(cfg)


def test_every_flag_of_the_table_sets_its_field(tmp_path):
    fields = {f"{section.name}.{f.name}" for section in dataclasses.fields(PipelineConfig)
              for f in dataclasses.fields(section.default_factory())}
    assert set(flags.fields_of_table()) <= fields
    cfg = config_from_args(build_parser().parse_args(
        ["run", "--data", str(tmp_path), "--head-epochs", "3", "--no-early-stopping", "--feature-views", "0",
         "--cache-budget-mb", "64", "--beam-mode", "in_memory", "--strategy", "3", "--verbose"]))
    assert (cfg.training.head_epochs, cfg.training.early_stopping, cfg.training.feature_views) == (3, False, 0)
    assert (cfg.training.cache_budget_mb, cfg.runtime.direct_running_mode, cfg.runtime.verbose) == (64, "in_memory", True)
    assert cfg.model.strategy is Strategy.CLASSIFIER_ONLY
    untouched = config_from_args(build_parser().parse_args(["run", "--data", str(tmp_path)]))
    assert untouched == dataclasses.replace(PipelineConfig(), data=dataclasses.replace(PipelineConfig().data,
                                                                                      path=str(tmp_path)))


def test_the_demo_preset_fills_only_what_the_command_line_left():
    demo = config_from_args(build_parser().parse_args(["run", "--demo", "--finetune-epochs", "2"]))
    assert (demo.training.finetune_epochs, demo.model.tflite, demo.model.allow_random_init) == (2, "int8", True)
    assert demo.training.head_epochs == PipelineConfig().training.head_epochs  # small data: the logistic head fit
    assert demo.model.backbone == "xception"  # the demo is the default recipe
    with pytest.raises(ConfigError, match="--demo uses the generated images"):
        config_from_args(build_parser().parse_args(["run", "--demo", "--data", "/tmp"]))
