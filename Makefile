# `make demo`: the local pipeline on the generated demo images. `make test`: the test suite.
# `make test-fast`: the unit tests only (no pipeline run; pytest markers e2e and slow, pytest.ini).
# Both run the tests in TEST_WORKERS processes (pytest-xdist; a module's tests that share a module-scoped fixture
# stay in one of them, conftest.py). TEST_WORKERS=0 runs them in this process, one after another.
# `make docs`: regenerate the flag reference in docs/configuration.md after adding or changing a flag.
# Each builds .venv from requirements.lock first if needed (see scripts/bootstrap.sh; PYTHON=... overrides).
VENV ?= .venv
PYTEST_ARGS ?=
TEST_WORKERS ?= 2

.PHONY: venv demo test test-fast docs lock clean

venv:
	@bash scripts/bootstrap.sh

demo: venv
	$(VENV)/bin/tfx-image-finetune run --demo --output outputs/demo

test: venv
	$(VENV)/bin/python -m pytest tests -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

test-fast: venv
	$(VENV)/bin/python -m pytest tests -m "not e2e and not slow" -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

docs: venv
	$(VENV)/bin/python -m tfx_image_finetune.cli.flag_reference

# Re-resolve the lock (needs the network to PyPI); commit the result.
lock: venv
	$(VENV)/bin/uv pip compile --python $(VENV)/bin/python --python-version 3.10 \
		-o requirements.lock requirements.in

clean:
	rm -rf outputs .pytest_cache
