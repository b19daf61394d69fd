"""ImageFolderExampleGen's executor on real files: splits, determinism, bad files, layout errors."""

import json
import os
import shutil

import pytest
from PIL import Image
from tfx.utils import proto_utils

from tfx_image_finetune.components.image_folder_example_gen.component import make_configs
from tfx_image_finetune.components.image_folder_example_gen.executor import ImageIngestError
from tests.helpers import SPLIT_RATIOS, run_example_gen

@pytest.mark.slow  # Beam ExampleGen over the 120 demo images (~15 s on 2 cores)
def test_hash_split_is_deterministic_and_follows_ratios(demo_images, tmp_path):
    first, report = run_example_gen(demo_images, str(tmp_path / "a"))
    second, _ = run_example_gen(demo_images, str(tmp_path / "b"))
    assert first == second
    assert set(first) == {"train", "selection", "test"}
    total = sum(len(rows) for rows in first.values())
    assert total == 120 and report["valid_images"] == 120 and report["skipped_files"] == 0
    assert 0.65 < len(first["train"]) / total < 0.92
    assert first["selection"] and first["test"]
    names = [set(rows) for rows in first.values()]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    assert {label for _, label in first["train"]} == {"night", "sunny"}
    assert all(name.startswith(label + "/") for name, label in first["train"])
    other, _ = run_example_gen(demo_images, str(tmp_path / "c"), {"train": 50, "selection": 25, "test": 25})
    assert len(other["train"]) < len(first["train"])


def _copy_tree(src, dst):
    shutil.copytree(src, dst)
    return str(dst)


def test_bad_files_are_skipped_counted_and_listed(demo_images, tmp_path):
    root = _copy_tree(demo_images, tmp_path / "data")
    with open(os.path.join(root, "night", "truncated.jpg"), "wb") as f:
        f.write(open(os.path.join(root, "night", "night_0000.jpg"), "rb").read()[:200])
    with open(os.path.join(root, "sunny", "notes.txt"), "w") as f:
        f.write("not an image")
    with open(os.path.join(root, "sunny", "fake.png"), "w") as f:
        f.write("<html>")
    Image.new("RGB", (10, 10), (1, 2, 3)).save(os.path.join(root, "sunny", "tiny.gif"))
    splits, report = run_example_gen(root, str(tmp_path / "out"))
    assert report["valid_images"] == 121  # the GIF is a real image
    assert report["skipped_files"] == 3
    skipped = {r["path"]: r["reason"] for r in report["skipped"]}
    assert set(skipped) == {"night/truncated.jpg", "sunny/notes.txt", "sunny/fake.png"}
    assert "unsupported file type" in skipped["sunny/notes.txt"]
    assert "not a decodable image" in skipped["sunny/fake.png"]
    names = {name for rows in splits.values() for name, _ in rows}
    assert "sunny/tiny.gif" in names and not names & set(skipped)


@pytest.mark.slow  # Beam ExampleGen over the 120 demo images (~15 s on 2 cores)
def test_given_splits_are_kept(demo_images, tmp_path):
    root = tmp_path / "split"
    for split, cls_range in (("train", range(0, 40)), ("validation", range(40, 60))):
        for cls in ("night", "sunny"):
            os.makedirs(root / split / cls)
            for i in cls_range:
                name = f"{cls}_{i:04d}.jpg"
                shutil.copy(os.path.join(demo_images, cls, name), root / split / cls / name)
    splits, report = run_example_gen(str(root), str(tmp_path / "out"), selection_percent=25)
    assert set(splits) == {"train", "selection", "test"}
    # validation/ is what the Evaluator judges; selection is carved out of train/ by a hash of the path.
    assert len(splits["test"]) == 40 and all(name.startswith("validation/") for name, _ in splits["test"])
    assert len(splits["train"]) + len(splits["selection"]) == 80
    assert 10 <= len(splits["selection"]) <= 30 and not set(splits["train"]) & set(splits["selection"])
    assert all(name.startswith("train/") for name, _ in splits["train"] + splits["selection"])
    again, _ = run_example_gen(str(root), str(tmp_path / "again"), selection_percent=25)
    assert again == splits  # deterministic
    assert report["valid_per_class"] == {"train": {"night": 40, "sunny": 40}, "validation": {"night": 20, "sunny": 20}}
    assert report["skipped_files"] == 0


def test_a_given_test_folder_is_judged_and_validation_selects(demo_images, tmp_path):
    root = tmp_path / "split"
    for split, cls_range in (("train", range(0, 30)), ("validation", range(30, 45)), ("test", range(45, 60))):
        for cls in ("night", "sunny"):
            os.makedirs(root / split / cls)
            for i in cls_range:
                name = f"{cls}_{i:04d}.jpg"
                shutil.copy(os.path.join(demo_images, cls, name), root / split / cls / name)
    splits, _ = run_example_gen(str(root), str(tmp_path / "out"))
    assert {split: len(rows) for split, rows in splits.items()} == {"train": 60, "selection": 30, "test": 30}
    assert all(name.startswith("validation/") for name, _ in splits["selection"])
    assert all(name.startswith("test/") for name, _ in splits["test"])


def test_class_sets_must_agree_across_splits(demo_images, tmp_path):
    root = tmp_path / "split"
    shutil.copytree(demo_images, root / "train")
    os.makedirs(root / "validation" / "night")
    shutil.copy(os.path.join(demo_images, "night", "night_0000.jpg"), root / "validation" / "night")
    os.makedirs(root / "validation" / "cloudy")
    shutil.copy(os.path.join(demo_images, "night", "night_0001.jpg"), root / "validation" / "cloudy")
    with pytest.raises(ImageIngestError, match="class folders differ between splits"):
        run_example_gen(str(root), str(tmp_path / "out"))


@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"),
    ("one_class", "found 1 class folder"),
    ("empty_class", "class 'empty' is empty"),
    ("all_corrupt_class", r"class\(es\) \['broken'\].*have no valid image.*broken/a.jpg"),
])
def test_unusable_folders_fail_with_a_clear_message(demo_images, tmp_path, case, message):
    root = tmp_path / "data"
    if case != "missing":
        shutil.copytree(os.path.join(demo_images, "night"), root / "night")
    if case in ("empty_class", "all_corrupt_class"):
        shutil.copytree(os.path.join(demo_images, "sunny"), root / "sunny")
    if case == "empty_class":
        os.makedirs(root / "empty")
    if case == "all_corrupt_class":
        os.makedirs(root / "broken")
        (root / "broken" / "a.jpg").write_bytes(b"\xff\xd8 not really")
    with pytest.raises((ImageIngestError, FileNotFoundError), match=message):
        run_example_gen(str(root), str(tmp_path / "out"))


def test_an_empty_split_is_an_error_naming_it(demo_images, tmp_path):
    root = tmp_path / "tiny"
    for cls in ("night", "sunny"):
        os.makedirs(root / cls)
        for i in range(3):
            shutil.copy(os.path.join(demo_images, cls, f"{cls}_{i:04d}.jpg"), root / cls)
    with pytest.raises(ImageIngestError, match="split has no image.*--split"):
        run_example_gen(str(root), str(tmp_path / "out"), {"train": 90, "selection": 5, "test": 5})


def test_every_file_is_ingested_or_listed_with_a_reason(demo_images, tmp_path):
    """Nested images join their class; stray, hidden and dangling-link files are listed skips."""
    root = _copy_tree(demo_images, tmp_path / "data")
    src = os.path.join(root, "night", "night_0000.jpg")
    os.makedirs(os.path.join(root, "night", "sub", "deeper"))
    shutil.copy(src, os.path.join(root, "night", "sub", "a.jpg"))
    shutil.copy(src, os.path.join(root, "night", "sub", "deeper", "b.jpg"))
    shutil.copy(src, os.path.join(root, "stray.jpg"))
    shutil.copy(src, os.path.join(root, "sunny", ".hidden.jpg"))
    os.makedirs(os.path.join(root, ".cache"))
    shutil.copy(src, os.path.join(root, ".cache", "x.jpg"))
    os.symlink(os.path.join(root, "gone.jpg"), os.path.join(root, "sunny", "dangling.jpg"))
    splits, report = run_example_gen(root, str(tmp_path / "out"))
    names = {name for rows in splits.values() for name, _ in rows}
    assert {"night/sub/a.jpg", "night/sub/deeper/b.jpg"} <= names
    assert report["valid_images"] == 122 and report["nested_images"] == 2
    assert report["valid_per_class"] == {".": {"night": 62, "sunny": 60}}
    kinds = {r["path"]: r["kind"] for r in report["skipped"]}
    assert kinds == {"stray.jpg": "not in a class folder", "sunny/.hidden.jpg": "hidden file",
                     ".cache": "hidden file", "sunny/dangling.jpg": "broken symbolic link"}
    assert report["skipped_per_reason"] == {".": {"broken symbolic link": 1, "hidden file": 2,
                                                  "not in a class folder": 1}}
    # Per class in each output split, counted from the written examples themselves.
    per_split = report["examples_per_split"]
    assert set(per_split) == {"train", "selection", "test"}
    for split, rows in splits.items():
        assert per_split[split] == {c: sum(1 for _, label in rows if label == c) for c in ("night", "sunny")}


def test_files_beside_the_split_folders_are_listed(demo_images, tmp_path):
    root = tmp_path / "split"
    for split in ("train", "validation"):
        for cls in ("night", "sunny"):
            os.makedirs(root / split / cls)
            for i in range(3):
                shutil.copy(os.path.join(demo_images, cls, f"{cls}_{i:04d}.jpg"), root / split / cls)
    (root / "README.txt").write_text("about")
    shutil.copy(os.path.join(demo_images, "night", "night_0000.jpg"), root / "train" / "loose.jpg")
    _, report = run_example_gen(str(root), str(tmp_path / "out"))
    kinds = {r["path"]: r["kind"] for r in report["skipped"]}
    assert kinds == {"README.txt": "not in a split folder", "train/loose.jpg": "not in a class folder"}


def test_a_failed_ingest_keeps_its_report(demo_images, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(os.path.join(demo_images, "night"), root / "night")
    os.makedirs(root / "broken")
    (root / "broken" / "a.jpg").write_bytes(b"\xff\xd8 not really")
    with pytest.raises(ImageIngestError, match=r"report: .*ingest_reports/report.json") as err:
        run_example_gen(str(root), str(tmp_path / "out"))
    kept = str(err.value).rsplit("report: ", 1)[1].rstrip(")")
    assert json.load(open(kept))["skipped"][0]["path"] == "broken/a.jpg"


def test_driver_fingerprints_nested_files_and_survives_broken_links(demo_images, tmp_path):
    """The driver TFX runs before the executor: TFX's own stats every matched file and dies on a broken link."""
    from tfx.components.example_gen.driver import FileBasedDriver
    from tfx.dsl.io.filesystem import NotFoundError

    from tfx_image_finetune.components.image_folder_example_gen.component import ImageFolderDriver

    root = _copy_tree(demo_images, tmp_path / "data")
    input_config, _ = make_configs(None, SPLIT_RATIOS)

    def fingerprint(driver_class):
        props = {"input_base": root, "input_config": proto_utils.proto_to_json(input_config)}
        return driver_class(None).resolve_exec_properties(props, None, None)["input_fingerprint"]

    before = fingerprint(ImageFolderDriver)
    os.symlink(os.path.join(root, "gone.jpg"), os.path.join(root, "sunny", "dangling.jpg"))
    with pytest.raises(NotFoundError):
        fingerprint(FileBasedDriver)
    with_link = fingerprint(ImageFolderDriver)
    assert with_link != before
    os.makedirs(os.path.join(root, "night", "sub"))
    shutil.copy(os.path.join(root, "night", "night_0000.jpg"), os.path.join(root, "night", "sub", "n.jpg"))
    assert fingerprint(ImageFolderDriver) not in (before, with_link)  # a nested image invalidates the cache
