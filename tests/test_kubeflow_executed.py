"""The compiled Vertex AI / Kubeflow pipeline, executed: every task's own container command, in DAG order.

tests/kfp_local_runner.py plays the KFP v2 launcher (executor input, placeholders, resolver queries) over a
local folder standing in for the gs:// bucket; what runs in each task is TFX's container entrypoint with this
package, as in the pipeline image.
"""

import glob
import json
import os

import pytest

from tfx_image_finetune.cli.main import main
from tests.conftest import REPO
from tests.kfp_local_runner import Run, Store

pytestmark = pytest.mark.e2e  # the compiled pipeline, executed task by task

BUCKET = "gs://kfp-harness-bucket"
COMPILED = {"head_epochs": 3, "finetune_epochs": 2}
RUNTIME = {"head_epochs": 1, "finetune_epochs": 1}  # what this run asks for instead


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    from tfx_image_finetune.local import demo_data

    bucket = tmp_path_factory.mktemp("bucket")
    demo_data.generate(str(bucket / "images"), per_class=20, size=64)
    spec = str(tmp_path_factory.mktemp("spec") / "pipeline.json")
    assert main([
        "compile", "--target", "vertex", "--project", "p", "--region", "europe-west4",
        "--pipeline-root", f"{BUCKET}/root", "--data", f"{BUCKET}/images", "--split-folders", "none",
        "--num-classes", "2", "--serving-dir", f"{BUCKET}/serving", "--schema-dir", os.path.join(REPO, "schema"),
        "--backbone", "mobilenet_v2", "--alpha", "0.35", "--image-size", "64", "--weights", "none",
        "--head-epochs", str(COMPILED["head_epochs"]), "--finetune-epochs", str(COMPILED["finetune_epochs"]),
        "--accuracy-threshold", "0", "--beam-mode", "in_memory", "--spec-file", spec,  # tiny data: no worker processes
    ]) == 0
    store = Store()
    run = Run(spec, str(tmp_path_factory.mktemp("logs")), {BUCKET: str(bucket)}, RUNTIME, store).run()
    print("task seconds:", run.seconds)
    return spec, bucket, run, store


def _uri(run, task, key):
    (artifact,) = run.outputs[task][key]
    return artifact["uri"]


def test_every_task_ran_and_wrote_its_outputs(executed):
    _, bucket, run, _ = executed
    tasks = run.spec["root"]["dag"]["tasks"]
    assert set(run.outputs) == set(tasks)
    for name, task in tasks.items():
        if name.startswith("latest_blessed_model_resolver"):
            continue
        for key in run.spec["components"][task["componentRef"]["name"]].get("outputDefinitions", {}).get("artifacts", {}):
            uri = _uri(run, name, key)
            assert uri.startswith(str(bucket)) and os.path.isdir(uri), (name, key)
            # Transform's analyzer cache stays empty: the sorted label vocabulary is not a cacheable analyzer.
            assert os.listdir(uri) or (name, key) == ("Transform", "updated_analyzer_cache"), (name, key)
    modules = {name: [argv[2] for argv in ran] for name, ran in run.commands.items()}
    assert modules["ImageFolderExampleGen"] == ["tfx.orchestration.kubeflow.v2.file_based_example_gen.driver",
                                                "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"]
    assert modules["Trainer"] == ["tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"]
    assert not any(name.startswith("latest_blessed_model_resolver") for name in modules)  # no container
    examples = run.outputs["ImageFolderExampleGen"]["examples"][0]
    assert json.loads(examples["metadata"]["split_names"]) == ["train", "selection", "test"]  # written back, passed on
    assert glob.glob(os.path.join(examples["uri"], "Split-test", "*.gz"))


def test_trainer_saw_the_runtime_parameter_values(executed):
    spec, _, run, _ = executed
    with open(spec) as f:
        defaults = json.load(f)["runtimeConfig"]["parameters"]
    assert defaults["head_epochs"] == {"intValue": str(COMPILED["head_epochs"])}
    with open(os.path.join(_uri(run, "Trainer", "model_run"), "history.json")) as f:
        epochs = json.load(f)["epochs"]
    assert [row["phase"] for row in epochs] == [1] * RUNTIME["head_epochs"] + [2] * RUNTIME["finetune_epochs"]


def test_blessed_model_is_pushed_and_answers_serving_default(executed):
    _, bucket, run, _ = executed
    import tensorflow as tf

    assert os.path.isfile(os.path.join(_uri(run, "Evaluator", "blessing"), "BLESSED"))
    assert run.outputs["Evaluator"]["blessing"][0]["metadata"]["blessed"] == 1.0
    pushed = run.outputs["Pusher"]["pushed_model"][0]["metadata"]
    assert pushed["pushed"] == 1.0
    served = os.path.join(str(bucket), "serving", "image_classifier")
    (version,) = os.listdir(served)
    assert pushed["pushed_destination"] == os.path.join(served, version)
    image = open(glob.glob(str(bucket / "images" / "sunny" / "*"))[0], "rb").read()
    out = tf.saved_model.load(os.path.join(served, version)).signatures["serving_default"](
        image_bytes=tf.constant([image]))
    assert out["probabilities"].shape == (1, 2)
    assert out["classes"].numpy()[0] in (b"night", b"sunny")


def test_resolvers_first_run_no_baseline_then_the_blessed_model(executed):
    spec, bucket, run, store = executed
    assert run.outputs["latest_blessed_model_resolver-model-blessing-resolver"] == {"model_blessing": []}
    assert run.outputs["latest_blessed_model_resolver-model-resolver"] == {"model": []}
    blessing = run.outputs["Evaluator"]["blessing"][0]["metadata"]
    assert "baseline_model_id" not in blessing  # the Evaluator judged without a baseline
    assert blessing["current_model_id"] == run.outputs["Trainer"]["model"][0]["name"]
    # A next run's resolvers (queried only, nothing executed) find this run's blessing and its model.
    tasks = run.spec["root"]["dag"]["tasks"]
    second = Run(spec, str(bucket), {BUCKET: str(bucket)}, RUNTIME, store)
    for name in ("latest_blessed_model_resolver-model-blessing-resolver",
                 "latest_blessed_model_resolver-model-resolver"):
        second.run_task(name, tasks[name])
    assert second.outputs["latest_blessed_model_resolver-model-blessing-resolver"]["model_blessing"] == \
        run.outputs["Evaluator"]["blessing"]
    assert second.outputs["latest_blessed_model_resolver-model-resolver"]["model"] == \
        run.outputs["Trainer"]["model"]
