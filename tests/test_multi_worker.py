"""Multi-worker training with real worker processes on 127.0.0.1 (TF_CONFIG, CPU): both workers train the same
steps to the same weights, the chief alone exports a model with the serving contract, the other worker's scratch
is gone, and the result is that of one worker on the same data, within noise."""

import json
import os
import re
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfx_image_finetune.component_configs import TrainerConfig
from tfx_image_finetune.serving_contract import IMAGE_INPUT, PROBABILITIES, SERVING_SIGNATURE
from tests.conftest import MOBILENET_WEIGHTS, REPO, color_classes, small_config
from tests.helpers import analyze_and_transform, encoded_image, run_example_gen

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not os.path.exists(MOBILENET_WEIGHTS),
                                                   reason="needs ../shared's MobileNetV2-0.35 weights")]
DIGEST = re.compile(r"(chief 0|worker 0|the only worker): (\d+) training steps, weights digest (\w+)")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """ExampleGen's TFRecords of two colour classes and Transform's output over the train split."""
    root = tmp_path_factory.mktemp("multi_worker")
    images = color_classes(str(root / "images"), {"red": (200, 40, 40), "blue": (40, 40, 200)}, per_class=16, size=48)
    run_example_gen(images, str(root / "gen"))
    split = {s: os.path.join(root, "gen", "examples", f"Split-{s}", "*") for s in ("train", "selection")}
    rows = []
    for record in tf.data.TFRecordDataset(tf.io.gfile.glob(split["train"]), compression_type="GZIP"):
        f = tf.train.Example.FromString(record.numpy()).features.feature
        rows.append({"image": [f["image"].bytes_list.value[0]], "label": [f["label"].bytes_list.value[0]]})
    analyze_and_transform(rows, tf.io.FixedLenFeature([1], tf.string), root, image_size=32)
    cfg = small_config(str(root / "out"), images)
    cfg.model.image_size, cfg.model.weights = 32, MOBILENET_WEIGHTS  # ImageNet features: both runs learn the task
    # Phase 1 on images (the input path phase 2 also takes): every step a distributed batch and an all-reduce.
    cfg.training.head_epochs, cfg.training.finetune_epochs, cfg.training.batch_size = 3, 0, 8
    cfg.training.feature_views, cfg.training.early_stopping, cfg.training.head_learning_rate = 0, False, 1e-2
    return {"root": root, "train_files": [split["train"]], "eval_files": [split["selection"]],
            "transform_output": str(root / "transform_fn"),
            "custom_config": TrainerConfig.of(cfg, 2).to_custom_config()}


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _train(data, name, tasks):
    """Start one process per (task type, index) of `tasks` (none: a single worker); wait; their stderr."""
    out = data["root"] / name
    args = {k: data[k] for k in ("train_files", "eval_files", "transform_output", "custom_config")}
    args.update(serving_model_dir=str(out / "serving"), model_run_dir=str(out / "model_run"))
    ports = _free_ports(len(tasks))
    cluster = {}
    for (kind, _), port in zip(tasks, ports):
        cluster.setdefault(kind, []).append(f"127.0.0.1:{port}")
    procs = []
    for kind, index in tasks or [(None, 0)]:
        env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TMPDIR=str(out / f"tmp-{kind}-{index}"),
                   TF_NUM_INTEROP_THREADS="1", TF_NUM_INTRAOP_THREADS="1")  # 2 cores, several processes
        os.makedirs(env["TMPDIR"])
        if kind:
            env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})
        procs.append(subprocess.Popen([sys.executable, "-m", "tests.multi_worker_child", json.dumps(args)],
                                      cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    try:
        logs = [p.communicate(timeout=900)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-3000:]
    return out, logs


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
    images = [encoded_image(color, size=(48, 48), fmt="PNG") for color in
              [(210, 30, 30), (190, 60, 50), (30, 30, 210), (60, 50, 190)]]
    two_workers, one_worker = _predict(str(out / "serving"), images), _predict(str(single / "serving"), images)
    assert two_workers.shape == (4, 2) and np.allclose(two_workers.sum(axis=1), 1.0, atol=1e-5)
    assert (two_workers.argmax(axis=1) == one_worker.argmax(axis=1)).all()  # within noise: the same answers
    assert json.load(open(single / "model_run" / "history.json"))["workers"] == 1
