"""The Evaluator's baseline rule, on real model folders: same classes, image size and features, or none.
Warm start judges the task by the same rule, and also wants the same network."""

import json
import os

from tfx_image_finetune.components.evaluator.executor import baseline_mismatch
from tfx_image_finetune.serving_contract import LABELS_FILE, SUMMARY_FILE


def _model(root, classes, size, keys=("image", "label"), old_format=False):
    serving = os.path.join(root, "Format-Serving")
    os.makedirs(os.path.join(serving, os.path.dirname(LABELS_FILE)))
    with open(os.path.join(serving, LABELS_FILE), "w") as f:
        f.write("".join(f"{name}\n" for name in classes))
    with open(os.path.join(serving, SUMMARY_FILE), "w") as f:
        features = {"image_key": keys[0], "label_key": keys[1]}
        config = ({"image_size": size, "data": features} if old_format  # exports before TrainerConfig's "transform"
                  else {"transform": {**features, "image_size": size}})
        json.dump({"config": {**config, "model": {"backbone": "mobilenet_v2", "alpha": 0.35}}}, f)
    return str(root)


def test_a_baseline_must_solve_the_same_task(tmp_path):
    model = _model(tmp_path / "model", ["cat", "dog"], 160)
    assert baseline_mismatch(model, _model(tmp_path / "same", ["cat", "dog"], 160)) == ""
    assert baseline_mismatch(model, _model(tmp_path / "old", ["cat", "dog"], 160, old_format=True)) == ""
    assert "takes 96 px" in baseline_mismatch(model, _model(tmp_path / "old96", ["cat", "dog"], 96, old_format=True))
    assert "has classes ['blue', 'red']" in baseline_mismatch(model, _model(tmp_path / "rb", ["blue", "red"], 160))
    assert "takes 96 px images, this model 160 px" in baseline_mismatch(model, _model(tmp_path / "small", ["cat", "dog"], 96))
    other_keys = _model(tmp_path / "keys", ["cat", "dog"], 160, ("img", "label"))
    assert "reads features ['img', 'label']" in baseline_mismatch(model, other_keys)


def test_warm_start_wants_the_same_task_by_the_same_rule_and_the_same_network(tmp_path):
    from tfx_image_finetune.config import ModelConfig
    from tfx_image_finetune.trainer.warm_start import mismatch

    blessed = os.path.join(_model(tmp_path / "blessed", ["cat", "dog"], 96), "Format-Serving")
    cfg = ModelConfig(backbone="mobilenet_v2", alpha=0.35, image_size=96)
    assert mismatch(blessed, ["cat", "dog"], cfg, ("image", "label")) == ""
    assert "has classes ['cat', 'dog'], this run ['a', 'b']" in mismatch(blessed, ["a", "b"], cfg)
    assert "reads features ['image', 'label'], this run ['img', 'label']" in mismatch(
        blessed, ["cat", "dog"], cfg, ("img", "label"))
    assert "has alpha 0.35, this run 1.0" in mismatch(blessed, ["cat", "dog"], ModelConfig("mobilenet_v2", 1.0, 96))
