"""The pipeline image, checked statically (no Docker here): what the compiled spec expects to find in it."""

import os
import re
import shlex

import pytest

from tfx_image_finetune.config import CloudConfig
from tests.conftest import REPO

# Python of the TFX base images (tensorflow/tfx:<tfx version>); a new base needs its line here.
BASE_IMAGE_PYTHON = {"tensorflow/tfx:1.16.0": "3.10"}


def _instructions():
    """(INSTRUCTION, argument) pairs of the Dockerfile, continuation lines joined, comments dropped."""
    text = open(os.path.join(REPO, "Dockerfile")).read()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [tuple(line.split(None, 1)) for line in joined.splitlines() if line.strip()]


def _lock():
    return open(os.path.join(REPO, "requirements.lock")).read()


def test_base_image_python_and_tfx_are_the_locks():
    (base,) = [arg for op, arg in _instructions() if op == "FROM"]
    assert base in BASE_IMAGE_PYTHON, f"unknown base image {base}: which Python does it ship?"
    locked_python = re.search(r"--python-version (\d+\.\d+)", _lock()).group(1)
    assert BASE_IMAGE_PYTHON[base] == locked_python
    setup = open(os.path.join(REPO, "setup.py")).read()
    assert f'python_requires=">={locked_python},' in setup
    assert f"tfx=={base.split(':')[1]}\n" in _lock()  # the image's TFX is the one the lock pins


def test_the_lock_is_installed_then_the_package_without_dependencies():
    steps = _instructions()
    runs = [(i, arg) for i, (op, arg) in enumerate(steps) if op == "RUN"]
    copied_at = {src: i for i, (op, arg) in enumerate(steps) if op == "COPY" for src in shlex.split(arg)[:-1]}
    lock_install = [i for i, arg in runs if "install" in arg and "-r requirements.lock" in arg]
    assert lock_install and copied_at["requirements.lock"] < lock_install[0]
    package_install = [(i, arg) for i, arg in runs if re.search(r"install .*--no-deps \.(\s|$)", arg)]
    assert package_install, "the package itself is installed with --no-deps (the lock's versions stay)"
    i_pkg = package_install[0][0]
    assert i_pkg > lock_install[0] and copied_at["setup.py"] < i_pkg
    # Every folder setup.py maps into the package is in the image before it is installed.
    missing = {folder for folder in _setup_folders() if copied_at.get(folder, i_pkg) >= i_pkg}
    assert not missing, f"not copied into the image before the install: {sorted(missing)}"


def test_schema_lands_where_the_compiled_spec_points_and_no_source_where_components_run():
    workdir, dest, removed = "/", {}, set()
    for op, arg in _instructions():
        if op == "WORKDIR":
            workdir = os.path.join(workdir, arg)
        elif op == "COPY":
            *sources, target = shlex.split(arg)
            for src in sources:
                dest[src] = os.path.normpath(os.path.join(workdir, target))
        elif op == "RUN":
            removed.update(m for m in re.findall(r"rm -rf (\S+)", arg))
    assert os.path.dirname(dest["schema/schema.pbtxt"] + "/x") == CloudConfig().image_schema_dir == "/pipeline/schema"
    assert os.path.isfile(os.path.join(REPO, "schema", "schema.pbtxt"))
    sources = {dest[folder] for folder in _setup_folders()}
    assert all(os.path.dirname(path) in removed for path in sources)  # built, then gone
    assert workdir == "/pipeline" and not any(path.startswith(workdir + "/") for path in sources)


def _setup_folders():
    """The repository folders setup.py maps into the package (its NAME folder and FOLDERS)."""
    setup = open(os.path.join(REPO, "setup.py")).read()
    folders = re.findall(r'"(\w+)"', re.search(r"FOLDERS = \[(.*?)\]", setup, re.S).group(1))
    return [re.search(r'NAME = "(\w+)"', setup).group(1)] + folders


@pytest.mark.slow  # builds a wheel
def test_the_installed_distribution_has_one_top_level_name_and_every_package(tmp_path):
    """A wheel (what the image installs) holds `tfx_image_finetune` only, with every source package below it."""
    import subprocess
    import sys
    import zipfile

    import shutil

    source = tmp_path / "src"  # a copy: setuptools builds in the tree it is given (build/, *.egg-info)
    for folder in _setup_folders():
        shutil.copytree(os.path.join(REPO, folder), source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(REPO, "setup.py"), source / "setup.py")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(source)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"tfx_image_finetune"}
    installed = {os.path.dirname(n).replace("/", ".") for n in names if n.endswith("/__init__.py")}
    expected = {"tfx_image_finetune"}
    for folder in _setup_folders()[1:]:
        for path, _, files in os.walk(os.path.join(REPO, folder)):
            if "__init__.py" in files:
                expected.add("tfx_image_finetune." + os.path.relpath(path, REPO).replace(os.sep, "."))
    assert installed == expected
    assert "tfx_image_finetune/schema/schema.pbtxt" in names
    assert "tfx_image_finetune/local/quiet_shutdown/sitecustomize.py" in names
