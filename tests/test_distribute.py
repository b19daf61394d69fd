"""trainer/distribute.py's parts one by one (tests/test_multi_worker.py runs real workers): the cluster TF_CONFIG
describes, who writes where, the batch size a split by example needs, a lost peer's message, mixed precision."""

import json
import os

import pytest
import tensorflow as tf

from tfx_image_finetune.config import ModelConfig
from tfx_image_finetune.trainer.data import splittable_batch_size
from tfx_image_finetune.trainer.distribute import Cluster, lost_worker, mixed_precision, output_dir


def _cluster(monkeypatch, cluster, kind, index):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}}))
    return Cluster.from_env()


def test_the_chief_is_the_chief_or_worker_0_without_one(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    alone = Cluster.from_env()
    assert alone.workers == 1 and alone.is_chief and alone.name == "the only worker"
    with_chief = {"chief": ["h:1"], "worker": ["h:2", "h:3"]}
    assert _cluster(monkeypatch, with_chief, "chief", 0).is_chief
    worker = _cluster(monkeypatch, with_chief, "worker", 0)
    assert worker.workers == 3 and not worker.is_chief and worker.name == "worker 0"
    chiefless = {"worker": ["h:2", "h:3"]}
    assert _cluster(monkeypatch, chiefless, "worker", 0).is_chief
    assert not _cluster(monkeypatch, chiefless, "worker", 1).is_chief


def test_only_the_chief_writes_where_it_was_asked(tmp_path, monkeypatch):
    chief = _cluster(monkeypatch, {"chief": ["h:1"], "worker": ["h:2"]}, "chief", 0)
    with output_dir(str(tmp_path / "model_run"), chief) as path:
        assert path == str(tmp_path / "model_run")
    monkeypatch.setenv("TMPDIR", str(tmp_path / "scratch"))
    os.makedirs(tmp_path / "scratch")
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    worker = _cluster(monkeypatch, {"chief": ["h:1"], "worker": ["h:2"]}, "worker", 0)
    with output_dir(str(tmp_path / "model_run"), worker) as path:
        assert path.startswith(str(tmp_path / "scratch")) and "worker-0" in path
        os.makedirs(path)
        open(os.path.join(path, "history.json"), "w").close()
    assert os.listdir(tmp_path / "scratch") == [] and not os.path.exists(tmp_path / "model_run")


@pytest.mark.parametrize("examples, batch, workers, expected", [
    (25, 8, 2, 9),  # 25 = 3 x 8 + 1: one worker's last batch would be empty
    (24, 8, 2, 8), (26, 8, 2, 8), (33, 32, 4, 33), (100, 32, 1, 32),
])
def test_a_batch_split_by_example_leaves_no_worker_empty(examples, batch, workers, expected):
    size = splittable_batch_size(examples, batch, workers)
    assert size == expected
    assert examples % size == 0 or examples % size >= workers


def test_a_lost_peer_is_named():
    err = tf.errors.UnavailableError(None, None, "Collective ops is aborted by: failed to connect to all "
                                                 "addresses\nAdditional GRPC error information from remote target "
                                                 "/job:worker/replica:0/task:1")
    message = str(lost_worker(err, Cluster("chief", 0, 3, has_chief=True)))
    assert message.startswith("training stopped on chief 0: worker 1 is gone (UnavailableError: Collective ops")


@pytest.mark.slow  # trains a backbone twice (~15 s on 2 cores)
def test_mixed_precision_computes_in_float16_and_answers_in_float32():
    from tfx_image_finetune.trainer.keras2 import keras
    from tfx_image_finetune.trainer.model import build_model, compile_model

    with mixed_precision(True):
        model, base = build_model(ModelConfig("mobilenet_v2", 0.35, 32, "none"), 3, None)
        compile_model(model, 3, 1e-3)
        conv = next(layer for layer in base.layers if isinstance(layer, keras.layers.Conv2D))
        assert (conv.compute_dtype, conv.variable_dtype) == ("float16", "float32")
        images = tf.random.uniform([4, 32, 32, 3], -1, 1)
        model.fit(images, tf.constant([0, 1, 2, 0]), epochs=1, verbose=0)  # a training step on CPU
        assert model(images).dtype == tf.float32  # float32 logits
    assert keras.mixed_precision.global_policy().name == "float32"  # restored
    with mixed_precision(False):
        assert keras.mixed_precision.global_policy().name == "float32"
