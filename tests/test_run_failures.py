"""A run that fails ends with one line naming the component and the cause; the traceback goes to a log file,
and the ingest counts (with the kept report) are still shown."""

import glob
import os
import shutil

import pytest

from tfx_image_finetune.cli import main as cli
from tests.conftest import last_states


@pytest.mark.e2e  # a CLI `run` (that fails in its first component)
def test_failed_run_names_component_and_cause_and_keeps_report_and_log(demo_images, tmp_path, capfd):
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
    err = capfd.readouterr().err.strip().splitlines()
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
