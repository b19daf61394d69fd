"""Compile for Vertex AI / Kubeflow (KFP v2) and dry-run a submit: no credentials, no network."""

import json
import os

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from tfx_image_finetune.cli.main import main
from tests.conftest import cli_subprocess

CLOUD = ["--target", "vertex", "--project", "my-proj", "--region", "europe-west4",
         "--pipeline-root", "gs://bucket/root", "--data", "gs://bucket/images",
         "--split-folders", "train,validation", "--num-classes", "2"]


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("kfp") / "pipeline.json")
    assert main(["compile", *CLOUD, "--image", "europe-docker.pkg.dev/my-proj/repo/tfx-image-finetune:1",
                 "--dataflow", "--vertex-training", "--accelerator-count", "2", "--training-replicas", "3",
                 "--vertex-endpoint", "cats",
                 "--beam-arg", "Transform=--machine_type=n1-highmem-16", "--spec-file", path]) == 0
    with open(path) as f:
        return path, json.load(f)


def test_spec_parses_as_kfp_pipeline_spec_with_every_component(spec):
    _, doc = spec
    parsed = json_format.ParseDict(doc["pipelineSpec"], pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=True)
    tasks = parsed.root.dag.tasks
    assert {"ImageFolderExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "ValidationGate",
            "Transform", "TrainingHyperparameters", "Trainer", "Evaluator", "Pusher"} <= set(tasks)
    assert doc["runtimeConfig"]["gcsOutputDirectory"] == "gs://bucket/root/pipeline_root"


def test_dependency_edges_are_the_local_pipeline(spec):
    _, doc = spec
    tasks = doc["pipelineSpec"]["root"]["dag"]["tasks"]
    deps = {name: set(task.get("dependentTasks", [])) for name, task in tasks.items()}
    assert deps["StatisticsGen"] == {"ImageFolderExampleGen"}
    assert deps["ExampleValidator"] == {"StatisticsGen", "ImportSchemaGen"}
    assert deps["ValidationGate"] == {"ExampleValidator"}
    assert deps["Transform"] == {"ImageFolderExampleGen", "ImportSchemaGen", "ValidationGate"}
    assert deps["Trainer"] == {"ImageFolderExampleGen", "ImportSchemaGen", "TrainingHyperparameters", "Transform"}
    assert {"Trainer", "ImageFolderExampleGen"} <= deps["Evaluator"]
    assert any("resolver" in d for d in deps["Evaluator"])
    assert deps["Pusher"] == {"Trainer", "Evaluator"}
    assert deps["VertexPusher"] == {"Trainer", "Evaluator"}  # only with --vertex-endpoint
    vertex_args = " ".join(doc["pipelineSpec"]["deploymentSpec"]["executors"]["VertexPusher_executor"]["container"][
        "args"])
    assert "components.pusher.vertex.Executor" in vertex_args  # deploys only what passes the servable check
    assert "lifecycle" in doc["pipelineSpec"]["deploymentSpec"]["executors"]["ImageFolderExampleGen_executor"][
        "container"]  # TFX's file-based ExampleGen driver: input fingerprints for caching


def test_image_and_beam_args_land_in_the_right_components(spec):
    _, doc = spec
    executors = doc["pipelineSpec"]["deploymentSpec"]["executors"]
    image = "europe-docker.pkg.dev/my-proj/repo/tfx-image-finetune:1"
    assert all(e["container"]["image"] == image for e in executors.values() if "container" in e)
    for component in ("ImageFolderExampleGen", "StatisticsGen", "Transform", "Evaluator"):
        args = executors[f"{component}_executor"]["container"]["args"]
        for expected in ("--runner=DataflowRunner", "--project=my-proj", "--region=europe-west4",
                         "--temp_location=gs://bucket/root/tmp", f"--sdk_container_image={image}",
                         "--experiments=upload_graph", "--max_num_workers=10"):
            assert expected in args, (component, expected)
    assert "--machine_type=n1-highmem-16" in executors["Transform_executor"]["container"]["args"]
    assert "--machine_type=n1-highmem-16" not in executors["StatisticsGen_executor"]["container"]["args"]


def test_runtime_parameters_and_vertex_training(spec):
    _, doc = spec
    declared = doc["pipelineSpec"]["root"]["inputDefinitions"]["parameters"]
    assert set(declared) == {"head_epochs", "finetune_epochs", "head_learning_rate", "finetune_learning_rate"}
    defaults = doc["runtimeConfig"]["parameters"]
    assert defaults["head_epochs"] == {"intValue": "20"}
    assert defaults["finetune_learning_rate"] == {"doubleValue": 1e-05}
    task = doc["pipelineSpec"]["root"]["dag"]["tasks"]["TrainingHyperparameters"]
    assert task["inputs"]["parameters"]["head_epochs"] == {"componentInputParameter": "head_epochs"}
    executors = doc["pipelineSpec"]["deploymentSpec"]["executors"]
    # The executor that starts a Vertex AI Training job (TFX's), with ExampleGen's counts from the ingest report
    args = executors["Trainer_executor"]["container"]["args"]
    executor_class = args[args.index("--executor_class_path") + 1]
    from tfx.extensions.google_cloud_ai_platform.trainer.executor import GenericExecutor
    from tfx.utils import import_utils

    assert issubclass(import_utils.import_class_by_path(executor_class), GenericExecutor)
    trainer_inputs = doc["pipelineSpec"]["root"]["dag"]["tasks"]["Trainer"]["inputs"]["artifacts"]
    assert trainer_inputs["ingest_report"]["taskOutputArtifact"] == {"outputArtifactKey": "ingest_report",
                                                                      "producerTask": "ImageFolderExampleGen"}
    trainer_config = json.loads(
        doc["pipelineSpec"]["root"]["dag"]["tasks"]["Trainer"]["inputs"]["parameters"]["custom_config"]
        ["runtimeValue"]["constantValue"]["stringValue"])
    chief, workers = trainer_config["ai_platform_training_args"]["worker_pool_specs"]  # 3 machines train together
    assert chief["replica_count"] == 1 and workers["replica_count"] == 2
    assert chief["machine_spec"] == workers["machine_spec"] and chief["machine_spec"]["accelerator_count"] == 2
    assert chief["container_spec"] == workers["container_spec"]
    assert trainer_config["ai_platform_enable_vertex"] is True
    schema_file = doc["pipelineSpec"]["root"]["dag"]["tasks"]["ImportSchemaGen"]["inputs"]["parameters"]["schema_file"]
    assert schema_file["runtimeValue"]["constantValue"]["stringValue"] == "/pipeline/schema/schema.pbtxt"


def test_submit_dry_run_shows_the_job(spec, capsys):
    path, _ = spec
    assert main(["submit", *CLOUD, "--template", path, "--param", "head_epochs=3",
                 "--service-account", "sa@my-proj.iam.gserviceaccount.com", "--dry-run"]) == 0
    out = capsys.readouterr().out
    job = json.loads(out[out.index("{"):])
    assert job["project"] == "my-proj" and job["location"] == "europe-west4"
    assert job["pipeline_root"] == "gs://bucket/root" and job["template_path"] == path
    assert job["service_account"] == "sa@my-proj.iam.gserviceaccount.com"
    assert job["parameter_values"] == {"head_epochs": 3, "finetune_epochs": 10, "head_learning_rate": 0.001,
                                       "finetune_learning_rate": 1e-05}


@pytest.mark.parametrize("args, message", [
    (["--project", "p", "--pipeline-root", "/local/root", "--data", "gs://b/i"], "runtime.output_dir must be a gs:// URI"),
    (["--pipeline-root", "gs://b/r", "--data", "gs://b/i"], "cloud.project is required for the vertex target"),
    (["--project", "p", "--pipeline-root", "gs://b/r", "--data", "/local/images"], "data.path must be a gs:// URI"),
    (["--project", "p", "--pipeline-root", "gs://b/r", "--data", "gs://b/i", "--num-classes", "2"],
     "data.split_folders is required"),
])
def test_cloud_config_errors_come_before_compiling(args, message, tmp_path):
    proc, imported = cli_subprocess("compile", "--target", "vertex", *args, "--spec-file", str(tmp_path / "p.json"))
    assert proc.returncode == 2 and message in proc.stderr
    assert imported == [], imported  # nothing heavy was imported
    assert not (tmp_path / "p.json").exists()


def test_training_replicas_need_vertex_training_and_at_least_one(tmp_path, capsys):
    spec = str(tmp_path / "p.json")
    for args, message in [(["--training-replicas", "2"], "(--training-replicas) needs --vertex-training"),
                          (["--vertex-training", "--training-replicas", "0"], "must be >= 1, got 0")]:
        with pytest.raises(SystemExit) as exit_:
            main(["compile", *CLOUD, *args, "--spec-file", spec])
        assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not os.path.exists(spec)


def test_submit_without_a_template_compiles_one_first(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["submit", *CLOUD, "--dry-run"]) == 0
    out = capsys.readouterr().out
    job = json.loads(out[out.index("{"):])
    assert job["template_path"] == str(tmp_path / "pipeline.json")
    with open(tmp_path / "pipeline.json") as f:
        assert f"{job['display_name']}" == json.load(f)["pipelineSpec"]["pipelineInfo"]["name"]
    assert job["parameter_values"]["head_epochs"] == 20


def test_tflite_export_travels_in_the_compiled_pipeline(tmp_path):
    """--tflite: the gate runs in the cloud too, between the Trainer and the Pusher, with the project's executor."""
    path = str(tmp_path / "pipeline.json")
    assert main(["compile", *CLOUD, "--tflite", "int8", "--spec-file", path]) == 0
    with open(path) as f:
        doc = json.load(f)
    tasks = doc["pipelineSpec"]["root"]["dag"]["tasks"]
    assert set(tasks["TFLiteGate"]["dependentTasks"]) == {"ImageFolderExampleGen", "Trainer", "Transform"}
    assert set(tasks["Pusher"]["dependentTasks"]) == {"Trainer", "Evaluator", "TFLiteGate"}
    args = " ".join(doc["pipelineSpec"]["deploymentSpec"]["executors"]["TFLiteGate_executor"]["container"]["args"])
    assert "components.tflite_gate.executor.Executor" in args
    trainer_config = json.loads(tasks["Trainer"]["inputs"]["parameters"]["custom_config"]["runtimeValue"][
        "constantValue"]["stringValue"])
    assert trainer_config["model"]["tflite"] == "int8"  # the Trainer in the cloud writes the TFLite model too
