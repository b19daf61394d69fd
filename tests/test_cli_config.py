"""The CLI answers instantly, and bad configuration is named before anything heavy runs."""

import os
import subprocess
import sys
import time

import pytest

from pipeline.cli import build_parser, config_from_args
from pipeline.configs import ConfigError, PipelineConfig

CLI = [sys.executable, "-m", "pipeline.cli"]


def _cli(*args):
    start = time.monotonic()
    proc = subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=60)
    return proc, time.monotonic() - start


def test_help_and_flag_errors_answer_in_under_a_second():
    proc, seconds = _cli("run", "--help")
    assert proc.returncode == 0 and "--weights" in proc.stdout and seconds < 1.0, seconds
    proc, seconds = _cli("run", "--backbone", "vgg")
    assert proc.returncode == 2 and "invalid choice: 'vgg'" in proc.stderr and seconds < 1.0


@pytest.mark.parametrize("args, message", [
    (["--data", "/no/such/folder"], "data.path '/no/such/folder' is not a directory"),
    (["--weights", "/no/such/weights.h5"], "model.weights must be 'imagenet', 'none' or an existing weights file"),
    (["--split", "80,20"], "--split takes three percentages (train,selection,test)"),
    (["--split", "80,20,0"], "data.test_ratio must be > 0"),
    (["--split", "80,15,10"], "must sum to 100, got 80,15,10"),
    (["--source", "tfrecord", "--data", "/tmp"], "data.num_classes is required"),
    (["--accuracy-threshold", "1.5"], "eval.accuracy_threshold must be in [0, 1]"),
    (["--unfreeze-fraction", "0"], "model.unfreeze_fraction must be in (0, 1]"),
])
def test_bad_config_names_the_field(args, message):
    proc, seconds = _cli("run", *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert seconds < 1.5  # refused before TF/TFX are imported


def test_flags_override_the_typed_config(tmp_path):
    args = build_parser().parse_args([
        "run", "--data", str(tmp_path), "--backbone", "mobilenet_v2", "--alpha", "0.35", "--weights", "none",
        "--strategy", "2", "--head-epochs", "3", "--finetune-epochs", "0", "--split", "70,20,10",
        "--accuracy-threshold", "0.9", "--output", str(tmp_path / "out"),
    ])
    cfg = config_from_args(args)
    assert (cfg.model.backbone, cfg.model.alpha, cfg.model.weights, cfg.model.strategy) == ("mobilenet_v2", 0.35, "none", 2)
    assert (cfg.training.head_epochs, cfg.training.finetune_epochs) == (3, 0)
    assert cfg.split_ratios() == {"train": 70, "selection": 20, "test": 10}
    assert cfg.image_size == 160 and cfg.eval.accuracy_threshold == 0.9
    assert cfg.metadata_path == os.path.join(str(tmp_path / "out"), "metadata.sqlite")


def test_strategy_auto_and_class_weight_flags(tmp_path):
    def cfg(*flags):
        return config_from_args(build_parser().parse_args(["run", "--data", str(tmp_path), *flags]))

    assert cfg().model.strategy == 1 and cfg().training.class_weight == "none"  # the defaults
    assert cfg("--strategy", "auto").model.strategy == "auto"
    assert cfg("--strategy", "3").model.strategy == 3  # still an int
    assert cfg("--class-weight", "balanced").training.class_weight == "balanced"
    assert cfg("--strategy", "auto").trainer_config()["model"]["strategy"] == "auto"  # reaches the Trainer
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--strategy", "4"])
    bad = PipelineConfig()
    bad.model.strategy = "2"
    with pytest.raises(ConfigError, match="model.strategy"):
        bad.validate()


def test_defaults_are_the_recipe():
    cfg = PipelineConfig()
    assert (cfg.model.backbone, cfg.image_size, cfg.model.weights, cfg.model.dropout) == ("xception", 150, "imagenet", 0.2)
    assert (cfg.training.head_epochs, cfg.training.finetune_epochs) == (20, 10)
    assert (cfg.training.head_learning_rate, cfg.training.finetune_learning_rate) == (1e-3, 1e-5)
    with pytest.raises(ConfigError, match="model.backbone"):
        cfg.model.backbone = "vgg"
        cfg.validate()


def test_failed_imagenet_download_names_weights_path_and_only_the_demo_falls_back(tmp_path, monkeypatch, caplog):
    from trainer.model import WeightsUnavailableError, resolve_weights

    monkeypatch.setenv("HOME", str(tmp_path))  # no cached weights
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")  # nothing listens there: the fetch fails
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    model_cfg = {"backbone": "mobilenet_v2", "alpha": 0.35, "weights": "imagenet", "allow_random_init": False}
    with pytest.raises(WeightsUnavailableError, match="--weights PATH"):
        resolve_weights(model_cfg, 96)
    model_cfg["allow_random_init"] = True
    assert resolve_weights(model_cfg, 96) is None
    assert "RANDOM initialisation" in caplog.text
