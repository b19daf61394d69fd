"""The test harness itself: `make test` runs pytest-xdist with --dist loadgroup, and a module's tests that share
a module-scoped fixture (a pipeline run, an exported model) must stay in one process, and what the session shares
(conftest's first_run) is built by one process for all (conftest.py)."""

import os

import pytest


@pytest.fixture(scope="module")
def built_once():
    return os.getpid()


def test_a_module_fixtures_tests_are_grouped_in_one_worker(built_once, request):
    """pytest-xdist groups by a suffix it writes into the node id; pytest 9.2 made that write a silent no-op
    (pytest-xdist#1386, hence `pytest<9.2` in requirements.in). This fails when an upgrade breaks it again."""
    if not getattr(request.config.option, "loadgroup", False):  # set in each pytest-xdist worker
        pytest.skip("not under pytest-xdist --dist loadgroup (e.g. TEST_WORKERS=0)")
    assert request.node.nodeid.endswith("@tests/test_harness.py"), request.node.nodeid
    assert built_once == os.getpid()


_BUILD = """
import os, sys, time
sys.path.insert(0, sys.argv[1])
from tests.conftest import _built_once
shared, fail = sys.argv[2], sys.argv[3] == "fail"
with _built_once(shared, "thing") as done:
    if not os.path.isfile(done):
        with open(os.path.join(shared, "builds"), "a") as f:
            f.write("x")
        time.sleep(1)  # the other process meets the lock
        if fail:
            raise RuntimeError("broken build")
        with open(done, "w") as f:
            f.write("{}")
"""


@pytest.mark.parametrize("fail", [False, True])
def test_what_the_session_shares_is_built_by_one_process(tmp_path, fail):
    """conftest's first_run and demo images: built once, by whichever xdist process comes first; a failed build
    is reported to the others, not tried again."""
    import subprocess
    import sys

    from tests.conftest import REPO

    procs = [subprocess.Popen([sys.executable, "-c", _BUILD, REPO, str(tmp_path), "fail" if fail else "ok"],
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert open(tmp_path / "builds").read() == "x"
    if fail:
        assert all(p.returncode != 0 for p in procs)
        assert any("RuntimeError: broken build" in e for e in errors)
        assert any("thing failed in another test process: RuntimeError: broken build" in e for e in errors)
    else:
        assert all(p.returncode == 0 for p in procs), errors
