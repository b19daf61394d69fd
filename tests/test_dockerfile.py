"""The pipeline image, checked statically (no Docker here): what the compiled spec expects to find in it."""

import os
import re
import shlex

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
    # Every top-level package setup.py lists is in the image before it is installed.
    top_level = {name.split(".")[0] for name in _setup_packages()}
    missing = {pkg for pkg in top_level if copied_at.get(pkg, i_pkg) >= i_pkg}
    assert not missing, f"not copied into the image before the install: {sorted(missing)}"


def test_schema_lands_where_the_compiled_spec_points():
    workdir, dest = "/", {}
    for op, arg in _instructions():
        if op == "WORKDIR":
            workdir = os.path.join(workdir, arg)
        elif op == "COPY":
            *sources, target = shlex.split(arg)
            for src in sources:
                dest[src] = os.path.normpath(os.path.join(workdir, target))
    assert dest["schema"] == CloudConfig().image_schema_dir == "/pipeline/schema"
    assert os.path.isfile(os.path.join(REPO, "schema", "schema.pbtxt"))


def _setup_packages():
    setup = open(os.path.join(REPO, "setup.py")).read()
    return set(re.findall(r'"([\w.]+)"', re.search(r"packages=\[(.*?)\]", setup, re.S).group(1)))


def test_setup_installs_every_package_of_the_source_tree():
    """A non-editable install (the image's) has exactly the packages the code imports from."""
    found = set()
    for top in ("pipeline", "components", "trainer", "kubeflow", "schema"):
        for folder, _, files in os.walk(os.path.join(REPO, top)):
            if "__init__.py" in files:
                found.add(os.path.relpath(folder, REPO).replace(os.sep, "."))
    assert _setup_packages() == found
