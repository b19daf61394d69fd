"""The Trainer takes the examples per class from the ExampleGen's ingest report: TFX's real executor hands them to
run_fn in custom_config, so run_fn makes no pass over the TFRecords to count labels."""

import json
import os

from tfx.proto import trainer_pb2
from tfx.types import standard_artifacts
from tfx.utils import json_utils, proto_utils

from tfx_image_finetune.component_configs import EXAMPLES_PER_CLASS_KEY
from tfx_image_finetune.components.image_folder_example_gen.component import ImageIngestReport
from tfx_image_finetune.components.trainer.executor import Executor, examples_per_class

from tests.conftest import color_classes
from tests.helpers import run_example_gen


def record_fn_args(fn_args):
    """A run_fn that only writes what it was given (the 'model' TFX's executor checks for)."""
    os.makedirs(fn_args.serving_model_dir)
    with open(os.path.join(fn_args.serving_model_dir, "fn_args.json"), "w") as f:
        json.dump({"custom_config": fn_args.custom_config, "train_files": fn_args.train_files}, f)


def _trainer_properties(custom_config, train_splits=("train",), eval_splits=("selection",)):
    return {"train_args": proto_utils.proto_to_json(trainer_pb2.TrainArgs(splits=list(train_splits))),
            "eval_args": proto_utils.proto_to_json(trainer_pb2.EvalArgs(splits=list(eval_splits))),
            "custom_config": json_utils.dumps(custom_config), "run_fn": f"{__name__}.record_fn_args"}


def test_run_fn_gets_the_counts_the_example_gen_wrote(tmp_path):
    data = color_classes(str(tmp_path / "images"), {"red": (200, 0, 0), "blue": (0, 0, 200)}, per_class=12)
    rows, report = run_example_gen(data, str(tmp_path / "gen"))
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "gen" / "examples")
    examples.split_names = json.dumps(sorted(rows))
    ingest = ImageIngestReport()
    ingest.uri = str(tmp_path / "gen" / "report")
    model, model_run = standard_artifacts.Model(), standard_artifacts.ModelRun()
    model.uri, model_run.uri = str(tmp_path / "model"), str(tmp_path / "model_run")

    Executor().Do({"examples": [examples], "ingest_report": [ingest]}, {"model": [model], "model_run": [model_run]},
                  _trainer_properties({"num_classes": 2}))

    given = json.load(open(os.path.join(model.uri, "Format-Serving", "fn_args.json")))
    counted = {split: {} for split in ("train", "selection")}
    for split in counted:
        for _, label in rows[split]:
            counted[split][label] = counted[split].get(label, 0) + 1
    assert given["custom_config"][EXAMPLES_PER_CLASS_KEY] == {"train": counted["train"], "eval": counted["selection"]}
    assert given["custom_config"]["num_classes"] == 2  # the rest of the config is untouched
    assert sum(counted["train"].values()) + sum(counted["selection"].values()) < 24  # a test split was held out
    assert report["examples_per_split"]["train"] == counted["train"]


def test_counts_sum_the_splits_the_trainer_reads_and_are_absent_when_the_report_lacks_one():
    report = {"examples_per_split": {"a": {"x": 2, "y": 1}, "b": {"x": 3}, "c": {"y": 4}}}
    assert examples_per_class(report, _trainer_properties({}, ("a", "b"), ("c",))) == {
        "train": {"x": 5, "y": 1}, "eval": {"y": 4}}
    assert examples_per_class(report, _trainer_properties({}, ("a",), ("selection",))) is None
    assert examples_per_class({}, _trainer_properties({})) is None


def test_without_an_ingest_report_the_config_is_passed_unchanged(tmp_path):
    examples = standard_artifacts.Examples()
    examples.uri, examples.split_names = str(tmp_path / "examples"), json.dumps(["train", "selection"])
    model, model_run = standard_artifacts.Model(), standard_artifacts.ModelRun()
    model.uri, model_run.uri = str(tmp_path / "model"), str(tmp_path / "model_run")
    Executor().Do({"examples": [examples]}, {"model": [model], "model_run": [model_run]},
                  _trainer_properties({"num_classes": 2}))
    given = json.load(open(os.path.join(model.uri, "Format-Serving", "fn_args.json")))
    assert given["custom_config"] == {"num_classes": 2}
