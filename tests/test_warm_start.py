"""--warm-start: the latest blessed model's weights seed the Trainer's model when the task and network match.

Uses the e2e `first_run`'s blessed model (no extra pipeline run): a fresh model of the same backbone, size and
class list, once restored, answers the test examples exactly as the blessed SavedModel does.
"""

import dataclasses
import glob
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tfx.utils import path_utils

from tfx_image_finetune.report import run_summary as md
from tfx_image_finetune.trainer import warm_start
from tfx_image_finetune.trainer.model import build_model, probabilities
from tfx_image_finetune.trainer.transform import IMAGE_XF

pytestmark = pytest.mark.e2e  # the shared first_run's blessed model

CLASSES = ["night", "sunny"]


@pytest.fixture(scope="module")
def blessed(first_run):
    return path_utils.serving_model_path(md.latest_artifact_uri(first_run.metadata_path, "Model"))


def _test_examples(first_run):
    files = glob.glob(os.path.join(first_run.pipeline_root, "ImageFolderExampleGen/examples/*/Split-test/*.gz"))
    return tf.stack(list(tf.data.TFRecordDataset(files, compression_type="GZIP").take(8)))


def test_a_restored_model_answers_as_the_blessed_model(first_run, blessed):
    model_cfg = first_run.model
    examples = _test_examples(first_run)
    tft_output = tft.TFTransformOutput(md.latest_artifact_uri(first_run.metadata_path, "TransformGraph"))
    raw = tf.io.parse_example(examples, {"image": tft_output.raw_feature_spec()["image"]})
    images = tft_output.transform_features_layer()(raw)[IMAGE_XF]
    expected = tf.saved_model.load(blessed).signatures["serving_examples"](examples=examples)["probabilities"]

    model, _ = build_model(model_cfg, len(CLASSES), None, seed=7)
    fresh = probabilities(model(images, training=False), 2).numpy()
    outcome = warm_start.apply(model, blessed, CLASSES, model_cfg)
    assert outcome["used"] and "warm start from the latest blessed model" in outcome["note"]
    restored = probabilities(model(images, training=False), 2).numpy()
    assert np.abs(restored - expected.numpy()).max() < 1e-5
    assert np.abs(fresh - expected.numpy()).max() > 1e-3  # the restore changed the answers


@pytest.mark.parametrize("change, reason", [
    ({"classes": ["cat", "dog"]}, "has classes ['night', 'sunny'], this run ['cat', 'dog']"),
    ({"size": 128}, "takes 96 px images, this run 128 px"),
    ({"alpha": 1.0}, "has alpha 0.35, this run 1.0"),
    ({"base": None}, "no blessed model of this task yet"),
])
def test_another_task_or_network_starts_from_the_backbone_and_says_why(first_run, blessed, change, reason):
    model_cfg = dataclasses.replace(first_run.model, alpha=change.get("alpha", first_run.model.alpha),
                                    image_size=change.get("size", first_run.image_size))
    outcome = warm_start.apply(None, change.get("base", blessed), change.get("classes", CLASSES), model_cfg)
    assert not outcome["used"] and reason in outcome["note"] and "pretrained backbone" in outcome["note"]
