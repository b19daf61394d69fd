"""The serving-folder pusher: atomic versions, increasing integers, no repeated push, nothing on failure."""

import os

import pytest

from components.pusher.executor import SOURCE_MARKER, prune, push_atomically, version_of, versions


def _model(path, files=("saved_model.pb", "variables/variables.index")):
    for name in files:
        os.makedirs(os.path.dirname(os.path.join(path, name)), exist_ok=True)
        with open(os.path.join(path, name), "w") as f:
            f.write(name)
    return str(path)


def test_versions_increase_and_each_model_is_pushed_once(tmp_path):
    base = str(tmp_path / "serving" / "m")
    first = push_atomically(_model(tmp_path / "a"), base, "uri://model/1")
    second = push_atomically(_model(tmp_path / "b"), base, "uri://model/2")
    assert second > first and versions(base) == [first, second]
    assert version_of(base, "uri://model/1") == first
    assert version_of(base, "uri://model/3") is None
    assert open(os.path.join(base, str(first), SOURCE_MARKER)).read() == "uri://model/1"
    assert sorted(os.listdir(base)) == sorted([str(first), str(second)])  # no staging folders left


def test_interrupted_push_leaves_no_version_and_the_previous_one_untouched(tmp_path):
    base = str(tmp_path / "serving" / "m")
    good = push_atomically(_model(tmp_path / "good"), base, "uri://good")
    before = sorted(os.listdir(os.path.join(base, str(good))))
    broken = _model(tmp_path / "broken")
    os.symlink(str(tmp_path / "gone"), os.path.join(broken, "zzz_dangling"))  # the copy fails part-way
    with pytest.raises(Exception):
        push_atomically(broken, base, "uri://broken")
    assert versions(base) == [good]
    assert os.listdir(base) == [str(good)]
    assert sorted(os.listdir(os.path.join(base, str(good)))) == before


def test_only_the_newest_versions_are_kept(tmp_path):
    base = str(tmp_path / "serving" / "m")
    pushed = [push_atomically(_model(tmp_path / f"m{i}"), base, f"uri://{i}") for i in range(4)]
    prune(base, 2)
    assert versions(base) == pushed[-2:]
    prune(base, 0)
    assert versions(base) == pushed[-2:]
