"""The Evaluator's baseline rule, on real model folders: same classes, image size and features, or none."""

import json
import os

from tfx_image_finetune.components.evaluator.executor import baseline_mismatch
from tfx_image_finetune.serving_contract import LABELS_FILE, SUMMARY_FILE


def _model(root, classes, size, keys=("image", "label")):
    serving = os.path.join(root, "Format-Serving")
    os.makedirs(os.path.join(serving, os.path.dirname(LABELS_FILE)))
    with open(os.path.join(serving, LABELS_FILE), "w") as f:
        f.write("".join(f"{name}\n" for name in classes))
    with open(os.path.join(serving, SUMMARY_FILE), "w") as f:
        json.dump({"config": {"image_size": size, "data": {"image_key": keys[0], "label_key": keys[1]}}}, f)
    return str(root)


def test_a_baseline_must_solve_the_same_task(tmp_path):
    model = _model(tmp_path / "model", ["cat", "dog"], 160)
    assert baseline_mismatch(model, _model(tmp_path / "same", ["cat", "dog"], 160)) == ""
    assert "has classes ['blue', 'red']" in baseline_mismatch(model, _model(tmp_path / "rb", ["blue", "red"], 160))
    assert "takes 96 px images, this model 160 px" in baseline_mismatch(model, _model(tmp_path / "small", ["cat", "dog"], 96))
    other_keys = _model(tmp_path / "keys", ["cat", "dog"], 160, ("img", "label"))
    assert "reads features ['img', 'label']" in baseline_mismatch(model, other_keys)
