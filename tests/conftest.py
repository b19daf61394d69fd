"""Shared fixtures. Real data and weights come from ../shared (override: TFX_IMAGE_FINETUNE_SHARED)."""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import logging
import os
import shutil
from typing import Dict

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("TFX_IMAGE_FINETUNE_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
CATS_DOGS = os.path.join(SHARED, "data", "cats_and_dogs_filtered")
MOBILENET_WEIGHTS = os.environ.get(
    "TFX_IMAGE_FINETUNE_WEIGHTS",
    os.path.join(SHARED, "weights", "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"),
)


def small_config(output_dir: str, data: str):
    """MobileNetV2-0.35 at 96 px from random init, one epoch per phase: the pipeline's mechanics, quickly."""
    from tfx_image_finetune.config import PipelineConfig

    cfg = PipelineConfig()
    cfg.data.path = data
    cfg.model.backbone, cfg.model.alpha, cfg.model.image_size, cfg.model.weights = "mobilenet_v2", 0.35, 96, "none"
    cfg.training.head_epochs, cfg.training.finetune_epochs = 1, 1
    cfg.eval.accuracy_threshold = 0.0
    cfg.runtime.output_dir = output_dir
    return cfg


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture(scope="session")
def shared_tmp(tmp_path_factory, worker_id):
    """A folder every process of this test session shares (under pytest-xdist the workers' base temp's parent),
    for what is built once per session, not once per process."""
    base = tmp_path_factory.getbasetemp()
    return base if worker_id == "master" else base.parent


@contextlib.contextmanager
def _built_once(shared, name: str):
    """Holds `name`'s lock across the session's processes; yields the file that says it was built (exists: skip
    building) or that building it failed (a JSON with "error": raised here, not built again)."""
    with open(os.path.join(shared, name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = os.path.join(shared, name + ".json")
        if os.path.isfile(done):
            with open(done) as f:
                error = json.load(f).get("error")
            if error:
                pytest.fail(f"{name} failed in another test process: {error}")
        try:
            yield done
        except Exception as err:
            with open(done, "w") as f:
                json.dump({"error": f"{type(err).__name__}: {err}"}, f)
            raise


@pytest.fixture(scope="session")
def first_run(demo_images, shared_tmp):
    """One real LocalDagRunner run over the demo images, shared by the end-to-end and serving tests (built by the
    first test process that needs it; the others wait for it and read it).

    Tests that run the pipeline again do it on a copy (`copy_of_run`), so none depends on the order of tests and
    none writes into the shared run.
    """
    cfg = small_config(os.path.join(shared_tmp, "e2e"), demo_images)
    cfg.model.tflite = "float"  # the TFLite export, its gate and its push ride along (float: equal to the model)
    with _built_once(shared_tmp, "first_run") as done:
        if not os.path.isfile(done):
            from tfx_image_finetune.local import runner as local_runner

            records, root = _Records(), logging.getLogger()
            level = root.level
            root.addHandler(records)
            root.setLevel(logging.INFO)
            try:
                local_runner.run(cfg)
            finally:
                root.removeHandler(records)
                root.setLevel(level)
            with open(done, "w") as f:
                json.dump({"log": records.messages}, f)
    return cfg


@pytest.fixture(scope="session")
def first_run_log(first_run, shared_tmp):
    """Every log record of the first_run fixture's run (e.g. which Beam runner ran), as `name: message`."""
    with open(os.path.join(shared_tmp, "first_run.json")) as f:
        return json.load(f)["log"]


def copy_of_run(cfg, destination: str):
    """The run's output folder (metadata, pipeline root, serving dir) copied, and a config pointing at it.

    Cached artifacts keep their URIs in the original folder, which is only read.
    """
    out = copy.deepcopy(cfg)
    shutil.copytree(cfg.runtime.output_dir, destination)
    out.runtime.output_dir = destination
    return out


def color_classes(root: str, colors: dict, per_class: int, size: int = 64) -> str:
    """<root>/<class>/<i>.png: a noisy image of each class's colour with a random darker square."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, rgb in colors.items():
        os.makedirs(os.path.join(root, name))
        for i in range(per_class):
            pixels = np.clip(np.array(rgb) + rng.normal(0, 30, (size, size, 3)), 0, 255)
            x, y, side = *rng.integers(0, size // 2, 2), size // 3
            pixels[y:y + side, x:x + side] *= 0.5
            Image.fromarray(pixels.astype("uint8")).save(os.path.join(root, name, f"{i:03d}.png"))
    return root


@pytest.fixture(scope="session")
def demo_images(shared_tmp):
    """The demo's generated images (60 per class), made once per session."""
    root = os.path.join(shared_tmp, "demo_images")
    with _built_once(shared_tmp, "demo_images") as done:
        if not os.path.isfile(done):
            from tfx_image_finetune.local import demo_data

            demo_data.generate(root, per_class=60)
            with open(done, "w") as f:
                json.dump({}, f)
    return root


def predict_cli(capsys, *argv):
    """`tfx-image-finetune predict ...` in this process: (exit code, stdout lines split on tabs, stderr lines)."""
    from tfx_image_finetune.cli.main import main

    try:
        code = main(["predict", *argv])
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, [line.split("\t") for line in out.strip().splitlines()], err.strip().splitlines()


# `tfx-image-finetune ARGS` in a fresh interpreter that, at exit, writes which heavy libraries it imported:
# "answers at once" means "before TF, TFX, Beam or MLMD are imported", checked without a clock.
_CLI_PROBE = """
import atexit, json, os, runpy, sys
HEAVY = {"tensorflow", "tfx", "apache_beam", "ml_metadata", "tensorflow_transform", "tensorflow_model_analysis"}
def report():
    with open(os.environ["CLI_PROBE_OUT"], "w") as f:
        json.dump(sorted(HEAVY & {name.split(".")[0] for name in sys.modules}), f)
atexit.register(report)
sys.argv = ["tfx-image-finetune", *sys.argv[1:]]
runpy.run_module("tfx_image_finetune.cli.main", run_name="__main__")
"""


def cli_subprocess(*args: str, timeout: int = 120):
    """(the finished process, the heavy libraries it imported) for `tfx-image-finetune ARGS`."""
    import json
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        probe = os.path.join(scratch, "imported.json")
        proc = subprocess.run([sys.executable, "-c", _CLI_PROBE, *args], capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, "CLI_PROBE_OUT": probe})
        with open(probe) as f:
            return proc, json.load(f)


def last_states(metadata_path: str, pipeline_name: str) -> Dict[str, str]:
    """{node id: state of its latest execution} (COMPLETE, CACHED, FAILED, ...), read from MLMD."""
    from tfx_image_finetune.metadata_store import State, store

    s = store(metadata_path)
    out = {}
    for ctx in s.get_contexts_by_type("node"):
        latest = max(s.get_executions_by_context(ctx.id), key=lambda e: e.id)
        out[ctx.name[len(pipeline_name) + 1:]] = State.Name(latest.last_known_state)
    return out


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks it adds
def pytest_collection_modifyitems(config, items):
    """A test that uses the shared pipeline run (first_run, directly or through a fixture) is an e2e test: marked
    so, `make test-fast` (-m "not e2e and not slow") never starts a pipeline."""
    unmarked = [item.nodeid for item in items
                if "first_run" in getattr(item, "fixturenames", ()) and item.get_closest_marker("e2e") is None]
    if unmarked:
        raise pytest.UsageError("these tests use the first_run pipeline run but are not marked e2e: "
                                + ", ".join(unmarked))
    for item in items:
        if _uses_a_module_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    items.sort(key=_start_order)  # stable: within each class, the files' order


def _start_order(item) -> int:
    """The heavy tests first, so that the processes end together instead of one waiting on the last long test:
    those that do not need the shared run (each process starts one while the other may build it), then those
    that do, then the unit tests, which fill the end."""
    if item.get_closest_marker("e2e") is None and item.get_closest_marker("slow") is None:
        return 2
    return 1 if "first_run" in getattr(item, "fixturenames", ()) else 0


def _uses_a_module_fixture(item) -> bool:
    """Under `make test` (pytest-xdist, --dist loadgroup) the tests of one module that share a module-scoped
    fixture (a pipeline run, an exported model) go to one process, so the fixture is built once. The session's
    first_run is shared across processes another way (`_built_once`)."""
    info = getattr(item, "_fixtureinfo", None)
    return info is not None and any(d.scope == "module" for defs in info.name2fixturedefs.values() for d in defs)


def save_color_contract_model(root: str, explainable: bool = True) -> str:
    """A SavedModel with the serving contract (serving_default: image_bytes -> probabilities, class_ids,
    classes) over the pipeline's own decode (trainer.transform.decode_and_scale, default pixel limit): red vs blue
    by the mean red channel; with the explanation functions (serving_contract.PIXELS_FUNCTION,
    PIXEL_PROBABILITIES_FUNCTION) unless `explainable` is False. Saved as version 1 under `root`; returns `root`."""
    import tensorflow as tf

    from tfx_image_finetune.serving_contract import PIXEL_PROBABILITIES_FUNCTION, PIXELS_FUNCTION
    from tfx_image_finetune.trainer.transform import decode_and_scale

    def probabilities_of_pixels(pixels):
        red = tf.reduce_mean(pixels[..., 0], axis=[1, 2])  # [-1, 1]
        return tf.stack([(1 - red) / 2, (1 + red) / 2], axis=1)

    class Contract(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve(self, image_bytes):
            probabilities = probabilities_of_pixels(decode_and_scale(image_bytes, 8))
            class_ids = tf.argmax(probabilities, axis=1)
            return {"probabilities": probabilities, "class_ids": class_ids,
                    "classes": tf.gather(tf.constant(["blue", "red"]), class_ids)}

    module = Contract()
    if explainable:
        setattr(module, PIXELS_FUNCTION, tf.function(lambda image_bytes: decode_and_scale(image_bytes, 8),
                                                     input_signature=[tf.TensorSpec([None], tf.string)]))
        setattr(module, PIXEL_PROBABILITIES_FUNCTION, tf.function(
            probabilities_of_pixels, input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32)]))
    tf.saved_model.save(module, os.path.join(root, "1"), signatures={"serving_default": module.serve})
    return root
