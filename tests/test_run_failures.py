"""A run that fails ends with one line naming the component and the cause; the traceback goes to a log file,
and the ingest counts (with the kept report) are still shown."""

import glob
import os
import shutil

import pytest

from tfx_image_finetune.pipeline import cli
from tfx_image_finetune.pipeline import run_summary as md
from tests.conftest import last_states


@pytest.mark.e2e  # a CLI `run` (that fails in its first component)
def test_failed_run_names_component_and_cause_and_keeps_report_and_log(demo_images, tmp_path, capsys):
    root = tmp_path / "data"
    shutil.copytree(os.path.join(demo_images, "night"), root / "night")
    os.makedirs(root / "sunny")
    for name in sorted(os.listdir(os.path.join(demo_images, "sunny")))[:3]:
        shutil.copy(os.path.join(demo_images, "sunny", name), root / "sunny")
    os.makedirs(root / "broken")
    (root / "broken" / "a.jpg").write_bytes(b"\xff\xd8 not really")
    out = tmp_path / "out"
    code = cli.main(["run", "--data", str(root), "--output", str(out), "--backbone", "mobilenet_v2", "--alpha", "0.35",
                     "--image-size", "64", "--weights", "none", "--beam-mode", "in_memory"])
    assert code == cli.EXIT_FAILED
    err = capsys.readouterr().err.strip().splitlines()
    log = glob.glob(str(out / "logs" / "run-*.log"))
    assert len(log) == 1 and "Traceback" in open(log[0]).read()
    assert err[-1] == f"tfx-image-finetune: full traceback in {log[0]}"
    assert err[-2].startswith("tfx-image-finetune: error: ImageFolderExampleGen failed: ImageIngestError: "
                              "class(es) ['broken']")
    assert not [line for line in err if line.startswith("Traceback")]
    kept = glob.glob(str(out / "pipeline_root" / "ImageFolderExampleGen" / "ingest_reports" / "*.json"))
    assert len(kept) == 1 and f"Ingest report: {kept[0]}" in err
    assert "Skipped: 1 (not a decodable image 1)" in err
    assert any(line.startswith("WARNING: class 'sunny' has only") for line in err), err
    states = last_states(str(out / "metadata.sqlite"), "tfx-image-finetune")
    assert states == {"ImageFolderExampleGen": "FAILED"}, states
    assert "TFX_IMAGE_FINETUNE_RUN_PID" not in os.environ  # the run's settings for its workers are undone


def test_executions_a_failed_run_left_running_are_cancelled_and_their_outputs_removed(tmp_path):
    """E.g. a driver that raised: TFX leaves that execution RUNNING in MLMD and its output folder behind."""
    from ml_metadata.proto import metadata_store_pb2

    from tfx_image_finetune.pipeline import run_guard
    from tfx_image_finetune.config import PipelineConfig

    cfg = PipelineConfig()
    cfg.runtime.output_dir = str(tmp_path)
    s = md.store(cfg.metadata_path)
    node_type = s.put_context_type(metadata_store_pb2.ContextType(name="node"))
    exec_type = s.put_execution_type(metadata_store_pb2.ExecutionType(name="tfx.components.Trainer"))
    ctx = metadata_store_pb2.Context(type_id=node_type, name="tfx-image-finetune.Trainer")
    [ctx_id] = s.put_contexts([ctx])
    ids = []
    for state in (md.State.COMPLETE, md.State.RUNNING):
        execution = metadata_store_pb2.Execution(type_id=exec_type, last_known_state=state)
        ctx.id = ctx_id
        execution_id, _, _ = s.put_execution(execution, [], [ctx])
        ids.append(execution_id)
        os.makedirs(os.path.join(cfg.pipeline_root, "Trainer", "model", str(execution_id)))
    assert run_guard.cancel_unfinished(cfg, after_id=0) == ["Trainer"]
    states = {e.id: e.last_known_state for e in s.get_executions()}
    assert states == {ids[0]: md.State.COMPLETE, ids[1]: md.State.CANCELED}
    assert sorted(os.listdir(os.path.join(cfg.pipeline_root, "Trainer", "model"))) == [str(ids[0])]
