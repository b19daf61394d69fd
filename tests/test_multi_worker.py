"""Multi-worker training with real worker processes on 127.0.0.1 (TF_CONFIG, CPU): both workers train the same
steps to the same weights, the chief alone exports a model with the serving contract, the other worker's scratch
is gone, and the result is that of one worker on the same data, within noise."""

import json
import os
import pathlib
import re
import time

import numpy as np
import pytest
import tensorflow as tf

from tfx_image_finetune.component_configs import TrainerConfig
from tfx_image_finetune.serving_contract import IMAGE_INPUT, PROBABILITIES, SERVING_SIGNATURE
from tests import multi_worker_child
from tests.conftest import MOBILENET_WEIGHTS, color_classes, small_config
from tests.helpers import trainer_inputs

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not os.path.exists(MOBILENET_WEIGHTS),
                                                   reason="needs ../shared's MobileNetV2-0.35 weights")]
DIGEST = re.compile(r"(chief 0|worker 0|the only worker): (\d+) training steps, weights digest (\w+)")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """ExampleGen's TFRecords of two colour classes and Transform's output over the train split."""
    root = tmp_path_factory.mktemp("multi_worker")
    images = color_classes(str(root / "images"), {"red": (200, 40, 40), "blue": (40, 40, 200)}, per_class=16, size=48)
    inputs = trainer_inputs(images, root)
    cfg = small_config(str(root / "out"), images)
    cfg.model.image_size, cfg.model.weights = 32, MOBILENET_WEIGHTS  # ImageNet features: both runs learn the task
    # Phase 1 on images (the input path phase 2 also takes): every step a distributed batch and an all-reduce.
    cfg.training.head_epochs, cfg.training.finetune_epochs, cfg.training.batch_size = 3, 0, 8
    cfg.training.feature_views, cfg.training.early_stopping, cfg.training.head_learning_rate = 0, False, 1e-2
    return {"root": root, **inputs, "custom_config": TrainerConfig.of(cfg, 2).to_custom_config()}


def _start(data, name, tasks):
    out = data["root"] / name
    args = {k: data[k] for k in ("train_files", "eval_files", "transform_output", "custom_config")}
    args.update(serving_model_dir=str(out / "serving"), model_run_dir=str(out / "model_run"))
    procs, logs = multi_worker_child.start(args, str(out), tasks)
    return out, procs, [pathlib.Path(log) for log in logs]


def _train(data, name, tasks):
    """Run them to the end; each one's log."""
    out, procs, logs = _start(data, name, tasks)
    try:
        for p in procs:
            p.wait(timeout=900)
    finally:
        for p in procs:
            p.kill()
    texts = [log.read_text() for log in logs]
    for p, text in zip(procs, texts):
        assert p.returncode == 0, text[-3000:]
    return out, texts


def _predict(serving_dir, images):
    serve = tf.saved_model.load(serving_dir).signatures[SERVING_SIGNATURE]
    return np.concatenate([serve(**{IMAGE_INPUT: tf.constant([image])})[PROBABILITIES].numpy() for image in images])


def test_two_workers_train_alike_and_the_chief_alone_exports(data):
    out, logs = _train(data, "two", [("chief", 0), ("worker", 0)])
    done = [DIGEST.search(log) for log in logs]
    assert all(done), [log[-2000:] for log in logs]
    (chief, chief_steps, chief_weights), (worker, worker_steps, worker_weights) = (m.groups() for m in done)
    assert (chief, worker) == ("chief 0", "worker 0")
    assert int(chief_steps) == int(worker_steps) > 0  # both trained, the same global steps
    assert chief_weights == worker_weights  # synchronous: identical weights after training
    assert tf.io.gfile.exists(str(out / "serving" / "saved_model.pb"))  # the one export, the chief's
    history = json.load(open(out / "model_run" / "history.json"))
    assert history["workers"] == 2 and history["replicas"] == 2
    assert sum(row["steps"] for row in history["epochs"]) == int(chief_steps)
    for kind in ("chief", "worker"):  # (TF's autograph leaves its own files there)
        assert not [n for n in os.listdir(out / f"tmp-{kind}-0") if n.startswith("tfx-image-finetune-")], kind

    single, single_logs = _train(data, "one", [])
    single_steps = int(DIGEST.search(single_logs[0]).group(2))
    assert single_steps == int(chief_steps)  # the config's batch size is the global batch size
    two_history = json.load(open(out / "model_run" / "history.json"))["epochs"][-1]
    one_history = json.load(open(single / "model_run" / "history.json"))["epochs"][-1]
    assert two_history["val_accuracy"] == one_history["val_accuracy"]  # within noise: the same selection accuracy
    assert abs(two_history["val_loss"] - one_history["val_loss"]) < 0.1, (two_history, one_history)
    folder = data["root"] / "images"
    images = [(folder / c / name).read_bytes() for c in ("blue", "red") for name in sorted(os.listdir(folder / c))[:4]]
    two_workers, one_worker = _predict(str(out / "serving"), images), _predict(str(single / "serving"), images)
    assert two_workers.shape == (8, 2) and np.allclose(two_workers.sum(axis=1), 1.0, atol=1e-5)
    assert (two_workers.argmax(axis=1) == one_worker.argmax(axis=1)).mean() >= 0.75  # mostly the same answers
    assert json.load(open(single / "model_run" / "history.json"))["workers"] == 1


def test_a_worker_that_dies_fails_the_training_naming_it(data):
    out, (chief, worker), (chief_log, worker_log) = _start(data, "killed", [("chief", 0), ("worker", 0)])
    try:
        deadline = time.monotonic() + 600
        while "Epoch 2/" not in worker_log.read_text():  # training under way
            assert time.monotonic() < deadline and chief.poll() is None and worker.poll() is None
            time.sleep(1)
        worker.kill()
        chief.wait(timeout=300)
    finally:
        chief.kill()
        worker.kill()
    text = chief_log.read_text()
    assert chief.returncode != 0
    assert "WorkerLostError: training stopped on chief 0: worker 0 is gone" in text, text[-3000:]
    assert not os.path.exists(out / "serving")  # nothing exported
