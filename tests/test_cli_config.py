"""The CLI answers at once (before TF, TFX, Beam or MLMD are imported), and bad configuration is named before
anything heavy runs."""

import dataclasses
import os
import subprocess
import sys

import pytest

from tfx_image_finetune.cli.main import build_parser, config_from_args, main
from tfx_image_finetune.component_configs import TrainerConfig
from tfx_image_finetune.config import ConfigError, ModelConfig, PipelineConfig
from tests.conftest import MOBILENET_WEIGHTS, cli_subprocess


def _cli(*args):
    """(process, heavy libraries it imported): a check that comes before those imports answers at once."""
    return cli_subprocess(*args)


def test_help_and_flag_errors_answer_before_any_heavy_import():
    proc, imported = _cli("run", "--help")
    assert proc.returncode == 0 and "--weights" in proc.stdout and imported == [], imported
    proc, imported = _cli("run", "--backbone", "vgg")
    assert proc.returncode == 2 and "invalid choice: 'vgg'" in proc.stderr and imported == [], imported
    proc, imported = _cli("run", "--accuracy-threshold", "1.5")
    assert proc.returncode == 2 and "eval.accuracy_threshold must be in [0, 1]" in proc.stderr and imported == []


@pytest.mark.parametrize("args, message", [
    (["--data", "/no/such/folder"], "data.path '/no/such/folder' is not a directory"),
    (["--weights", "/no/such/weights.h5"], "model.weights must be 'imagenet', 'none' or an existing weights file"),
    (["--split", "80,20"], "--split takes three percentages (train,selection,test)"),
    (["--split", "80,20,0"], "data.test_ratio must be > 0"),
    (["--source", "tfrecord", "--data", "/tmp"], "data.num_classes is required"),
    (["--accuracy-threshold", "1.5"], "eval.accuracy_threshold must be in [0, 1]"),
    (["--unfreeze-fraction", "0"], "model.unfreeze_fraction must be in (0, 1]"),
    (["--image-size", "0"], "model.image_size (--image-size) must be in [71, 2048] pixels for xception, got 0"),
    (["--backbone", "xception", "--image-size", "70"], "must be in [71, 2048] pixels for xception, got 70"),
    (["--backbone", "mobilenet_v2", "--image-size", "31"], "must be in [32, 2048] pixels for mobilenet_v2"),
    (["--backbone", "efficientnet_b0", "--image-size", "31"], "must be in [32, 2048] pixels for efficientnet_b0"),
    (["--backbone", "resnet50", "--image-size", "31"], "must be in [32, 2048] pixels for resnet50"),
    (["--split", "70,20,20"], "must sum to 100, got 70,20,20 = 110"),
    (["--keep-versions", "-1"], "serving.keep_versions (--keep-versions) must be >= 0 (0 keeps all), got -1"),
    (["--patience", "-2"], "training.early_stopping_patience (--patience) must be >= 0, got -2"),
    (["--backbone", "mobilenet_v2", "--alpha", "0.3"], "model.alpha (--alpha) must be one of"),
    (["--weights", "README.md"], "model.weights (--weights) 'README.md' is not a Keras weights file (HDF5 .h5)"),
    (["--tflite", "int4"], "argument --tflite: invalid choice: 'int4'"),
    (["--tflite-max-accuracy-drop", "2"], "eval.tflite_max_accuracy_drop (--tflite-max-accuracy-drop) must be in [0, 1]"),
])
def test_bad_config_names_the_field(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:  # in this process (one subprocess above proves no heavy import)
        main(["run", *args, "--output", str(tmp_path / "out")])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_flags_override_the_typed_config(tmp_path):
    args = build_parser().parse_args([
        "run", "--data", str(tmp_path), "--backbone", "mobilenet_v2", "--alpha", "0.35", "--weights", "none",
        "--strategy", "2", "--head-epochs", "3", "--finetune-epochs", "0", "--split", "70,20,10",
        "--accuracy-threshold", "0.9", "--output", str(tmp_path / "out"),
    ])
    cfg = config_from_args(args)
    assert (cfg.model.backbone, cfg.model.alpha, cfg.model.weights, cfg.model.strategy) == ("mobilenet_v2", 0.35, "none", 2)
    assert (cfg.training.head_epochs, cfg.training.finetune_epochs) == (3, 0)
    assert cfg.split_ratios() == {"train": 70, "selection": 20, "test": 10}
    assert cfg.image_size == 160 and cfg.eval.accuracy_threshold == 0.9
    assert cfg.metadata_path == os.path.join(str(tmp_path / "out"), "metadata.sqlite")


def test_strategy_auto_and_class_weight_flags(tmp_path):
    def cfg(*flags):
        return config_from_args(build_parser().parse_args(["run", "--data", str(tmp_path), *flags]))

    assert cfg().model.strategy == 1 and cfg().training.class_weight == "none"  # the defaults
    assert cfg("--strategy", "auto").model.strategy == "auto"
    assert cfg("--strategy", "3").model.strategy == 3  # still an int
    assert cfg("--class-weight", "balanced").training.class_weight == "balanced"
    assert TrainerConfig.of(cfg("--strategy", "auto"), 2).to_custom_config()["model"]["strategy"] == "auto"  # reaches the Trainer
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--strategy", "4"])
    bad = PipelineConfig()
    bad.model.strategy = "2"
    with pytest.raises(ConfigError, match="model.strategy"):
        bad.validate()


def test_defaults_are_the_recipe():
    cfg = PipelineConfig()
    assert (cfg.model.backbone, cfg.image_size, cfg.model.weights, cfg.model.dropout) == ("xception", 150, "imagenet", 0.2)
    assert (cfg.training.head_epochs, cfg.training.finetune_epochs) == (20, 10)
    assert (cfg.training.head_learning_rate, cfg.training.finetune_learning_rate) == (1e-3, 1e-5)
    with pytest.raises(ConfigError, match="model.backbone"):
        cfg.model.backbone = "vgg"
        cfg.validate()


def test_failed_imagenet_download_names_weights_path_and_only_the_demo_falls_back(tmp_path, monkeypatch, caplog):
    from tfx_image_finetune.trainer.model import WeightsUnavailableError, resolve_weights

    monkeypatch.setenv("HOME", str(tmp_path))  # no cached weights
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")  # nothing listens there: the fetch fails
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    model_cfg = ModelConfig(backbone="mobilenet_v2", alpha=0.35, weights="imagenet", image_size=96)
    with pytest.raises(WeightsUnavailableError, match="--weights PATH"):
        resolve_weights(model_cfg)
    model_cfg.allow_random_init = True
    assert resolve_weights(model_cfg) is None
    assert "RANDOM initialisation" in caplog.text


def test_an_hdf5_file_without_keras_layers_is_not_accepted_as_weights(tmp_path):
    import h5py

    path = str(tmp_path / "data.h5")
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=[1, 2, 3])
    from tfx_image_finetune.local.preflight import check_local_paths

    cfg = PipelineConfig()
    cfg.model.weights = path
    with pytest.raises(ConfigError, match=r"--weights\) .*data.h5' is an HDF5 file but not Keras weights"):
        check_local_paths(cfg)


@pytest.mark.skipif(not os.path.exists(MOBILENET_WEIGHTS), reason="needs ../shared's MobileNetV2-0.35 weights")
def test_weights_for_another_backbone_fail_before_the_run_naming_the_flag():
    from tfx_image_finetune.trainer.model import WeightsFileError, build_checked

    model_cfg = ModelConfig(backbone="mobilenet_v2", alpha=0.35, weights=MOBILENET_WEIGHTS, image_size=64)
    build_checked(model_cfg, MOBILENET_WEIGHTS)  # the right backbone and width: accepted
    for backbone, alpha in (("mobilenet_v2", 1.0), ("resnet50", 1.0)):
        with pytest.raises(WeightsFileError, match=r"--weights '.*0.35_224_no_top.h5' does not fit backbone"):
            build_checked(dataclasses.replace(model_cfg, backbone=backbone, alpha=alpha), MOBILENET_WEIGHTS)


def test_a_backbone_that_cannot_be_built_is_named_and_the_demo_does_not_fall_back(caplog):
    from tfx_image_finetune.trainer.model import BackboneBuildError, resolve_weights

    model_cfg = ModelConfig(backbone="xception", alpha=1.0, weights="imagenet", allow_random_init=True, image_size=40)
    with pytest.raises(BackboneBuildError, match="Cannot build backbone 'xception' at 40 px.*at least 71"):
        resolve_weights(model_cfg)
    with pytest.raises(BackboneBuildError, match="alpha must be one of"):
        resolve_weights(dataclasses.replace(model_cfg, backbone="mobilenet_v2", alpha=0.3, image_size=96))
    assert "RANDOM" not in caplog.text


def test_layout_errors_come_before_tfx_is_imported(tmp_path):
    (tmp_path / "only" / "red").mkdir(parents=True)
    (tmp_path / "only" / "red" / "a.jpg").write_bytes(b"x")
    proc, imported = _cli("run", "--data", str(tmp_path / "only"), "--output", str(tmp_path / "out"))
    assert proc.returncode == 1 and "found 1 class folder(s) ['red']" in proc.stderr
    assert imported == [], imported
    (tmp_path / "only" / "blue").mkdir()
    proc, imported = _cli("run", "--data", str(tmp_path / "only"), "--output", str(tmp_path / "out"))
    assert proc.returncode == 1 and "class 'blue' is empty" in proc.stderr and imported == []


def _two_classes(root):
    for name in ("red", "blue"):
        (root / name).mkdir(parents=True)
        (root / name / "a.jpg").write_bytes(b"x")
    return str(root)


def test_a_serving_dir_that_cannot_be_written_fails_at_start_naming_the_flag(tmp_path):
    data = _two_classes(tmp_path / "data")
    (tmp_path / "file").write_text("a regular file")
    under_a_file = str(tmp_path / "file" / "serving")
    proc, imported = _cli("run", "--data", data, "--output", str(tmp_path / "out"), "--serving-dir", under_a_file)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"tfx-image-finetune: error: serving.serving_dir (--serving-dir) {under_a_file!r} cannot be created: "
        f"{str(tmp_path / 'file')!r} is a file, not a folder"]
    assert imported == [], imported  # before TF/TFX are imported, long before the Pusher
    assert (tmp_path / "file").read_text() == "a regular file"


def test_an_output_folder_that_cannot_be_created_fails_at_start_naming_the_flag(tmp_path):
    data = _two_classes(tmp_path / "data")
    (tmp_path / "file").write_text("a regular file")
    under_a_file = str(tmp_path / "file" / "out")
    proc, _ = _cli("run", "--data", data, "--output", under_a_file)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"tfx-image-finetune: error: runtime.output_dir (--output) {under_a_file!r} cannot be created: Not a directory"]


def test_the_serving_dir_probe_leaves_nothing_behind(tmp_path):
    from tfx_image_finetune.local.preflight import check_serving_dir

    cfg = PipelineConfig()
    cfg.serving.serving_dir = str(tmp_path / "serving")
    check_serving_dir(cfg)  # nothing there yet: probes tmp_path, creates nothing
    assert os.listdir(tmp_path) == []
    (tmp_path / "serving" / cfg.serving.model_name).mkdir(parents=True)
    check_serving_dir(cfg)  # both folders exist: both probed
    assert os.listdir(tmp_path / "serving") == [cfg.serving.model_name]
    assert os.listdir(tmp_path / "serving" / cfg.serving.model_name) == []


NOBODY = 65534


def test_a_serving_dir_without_write_permission_fails_for_a_non_root_user():
    """Tests run as root, who may write anywhere: the check runs in a child process that drops to `nobody`
    (after its imports), against a root-owned 0755 folder and, as the control, a world-writable one."""
    import shutil
    import tempfile

    if os.geteuid() != 0:
        pytest.skip("needs root to switch to another user (as a non-root user, chmod a folder instead)")
    top = tempfile.mkdtemp(prefix="serving-perm-", dir="/tmp")  # pytest's tmp_path is 0700: nobody can't enter
    try:
        os.chmod(top, 0o755)
        readonly, writable = os.path.join(top, "readonly"), os.path.join(top, "writable")
        os.mkdir(readonly, 0o755)
        os.mkdir(writable)
        os.chmod(writable, 0o777)
        code = ("import os, sys\n"
                "from tfx_image_finetune.config import ConfigError, PipelineConfig\n"
                "from tfx_image_finetune.local.preflight import check_serving_dir\n"
                f"os.setgid({NOBODY}); os.setuid({NOBODY})\n"
                "for path in sys.argv[1:]:\n"
                "    cfg = PipelineConfig(); cfg.serving.serving_dir = path\n"
                "    try:\n"
                "        check_serving_dir(cfg); print('ok')\n"
                "    except ConfigError as err:\n"
                "        print(err)\n")
        proc = subprocess.run([sys.executable, "-c", code, readonly, writable], capture_output=True, text=True,
                              timeout=60, cwd=top)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines() == [
            f"serving.serving_dir (--serving-dir) {readonly!r} cannot be written: no file can be created in "
            f"{readonly!r} (Permission denied); give a folder this user can write", "ok"]
        assert os.listdir(readonly) == [] and os.listdir(writable) == []
    finally:
        shutil.rmtree(top)


def test_a_damaged_metadata_store_fails_at_start_in_one_line(tmp_path):
    data = _two_classes(tmp_path / "data")
    out = tmp_path / "out"
    out.mkdir()
    metadata = out / "metadata.sqlite"
    metadata.write_bytes(b"\x00garbage, not SQLite\xff" * 64)
    proc, imported = _cli("run", "--data", data, "--output", str(out))
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"tfx-image-finetune: error: CorruptMetadataError: the pipeline metadata {str(metadata)!r} is damaged "
        f"(file is not a database): move it aside (e.g. mv {metadata} {metadata}.damaged; the next run then "
        f"starts afresh, without cached steps) or use another --output than {str(out)!r}"]
    assert imported == [], imported  # before TF/TFX/MLMD are imported
    assert metadata.read_bytes() == b"\x00garbage, not SQLite\xff" * 64  # left as it was


def test_a_sound_metadata_store_passes_and_a_damaged_page_is_found(tmp_path):
    import sqlite3

    from tfx_image_finetune.report import run_summary
    from tfx_image_finetune.metadata_store import CorruptMetadataError, check_metadata

    sound = str(tmp_path / "metadata.sqlite")
    run_summary.store(sound)  # MLMD creates its schema
    check_metadata(sound)
    check_metadata(str(tmp_path / "none.sqlite"))  # a first run: nothing to check
    damaged = str(tmp_path / "damaged.sqlite")
    with sqlite3.connect(damaged) as db:
        db.execute("CREATE TABLE t (a, b)")
        db.executemany("INSERT INTO t VALUES (?, ?)", [(i, "x" * 200) for i in range(2000)])
        db.execute("CREATE INDEX i ON t (b)")
    db.close()
    with open(damaged, "r+b") as f:  # a valid header, one page overwritten (a torn write, a bad disk)
        f.seek(4096 * 5)
        f.write(b"\xde\xad" * 2048)
    with pytest.raises(CorruptMetadataError, match="is damaged .*malformed.*: move it aside"):
        check_metadata(damaged)


def test_a_store_locked_past_the_wait_is_taken_as_in_use_not_damaged(tmp_path, monkeypatch):
    import sqlite3
    import time

    from tfx_image_finetune import metadata_store

    path = str(tmp_path / "metadata.sqlite")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(metadata_store, "BUSY_WAIT_S", 1.0)
    try:
        start = time.monotonic()
        metadata_store.check_metadata(path)  # no error: MLMD waits for a store in use itself
        waited = time.monotonic() - start
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert waited >= 1.0  # it did wait, in steps, up to the deadline


def test_ctrl_c_during_the_checks_before_the_run_stops_with_one_line(tmp_path):
    """The metadata check waits (up to 30 s) while another process holds the store's write lock: Ctrl-C then,
    before any run process exists, ends at once with one line and 130, not a traceback."""
    import signal
    import sqlite3
    import time

    data = _two_classes(tmp_path / "data")
    out = tmp_path / "out"
    out.mkdir()
    holder = sqlite3.connect(str(out / "metadata.sqlite"), isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")  # the check's PRAGMA now waits (up to 30 s) for this lock
    proc = None
    try:
        proc = subprocess.Popen([sys.executable, "-m", "tfx_image_finetune.cli.main", "run", "--data", data,
                                 "--output", str(out)], stderr=subprocess.PIPE, text=True)
        time.sleep(5)  # the CLI is in the check by then, which waits up to 30 s for the lock
        assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=20)[1]  # answered between two of the check's short waits, not after 30 s
    finally:
        if proc is not None and proc.poll() is None:  # not answered: no run left behind
            proc.kill()
            proc.wait()
        holder.execute("ROLLBACK")
        holder.close()
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["tfx-image-finetune: interrupted by SIGINT before the run started: stopped"]


def test_tflite_flags_and_the_demo_showing_int8(tmp_path):
    def cfg(*flags):
        return config_from_args(build_parser().parse_args(["run", "--data", str(tmp_path), *flags]))

    assert cfg().model.tflite == "none" and cfg().eval.tflite_max_accuracy_drop == 0.01  # the defaults
    assert cfg("--tflite", "float", "--tflite-max-accuracy-drop", "0.02").eval.tflite_max_accuracy_drop == 0.02
    assert TrainerConfig.of(cfg("--tflite", "float"), 2).to_custom_config()["model"]["tflite"] == "float"

    def demo(*flags):
        return config_from_args(build_parser().parse_args(["run", "--demo", *flags]))

    assert demo().model.tflite == "int8" and demo("--tflite", "none").model.tflite == "none"
