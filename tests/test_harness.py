"""The test harness itself: `make test` runs pytest-xdist with --dist loadgroup, and a module's tests that share
a module-scoped fixture (a pipeline run, an exported model) must stay in one process (conftest.py)."""

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
