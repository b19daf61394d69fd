"""What a successful run must not show: TF's shutdown TypeError reports and `nan` metrics."""

import math
import os
import subprocess
import sys

from tfx_image_finetune.local import run_guard
from tfx_image_finetune.report.run_summary import format_metrics

SCRIPT = """
class AtomicFunction:  # same qualname as TensorFlow's, whose __del__ fails at interpreter shutdown
    def __del__(self):
        raise TypeError("'NoneType' object is not subscriptable")

class Other:
    def __del__(self):
        raise TypeError("a real problem")

a, b = AtomicFunction(), Other()
del a, b
print("ran")
"""


def _python(env_path):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if env_path:
        env["PYTHONPATH"] = env_path
    return subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=60)


def test_atomic_function_shutdown_reports_are_dropped_in_every_process_the_run_starts():
    plain = _python(None)
    assert "AtomicFunction.__del__" in plain.stderr  # what Python prints without the hook
    quiet = _python(run_guard.QUIET_SHUTDOWN_DIR)  # what the run puts on its (and Beam workers') PYTHONPATH
    assert quiet.stdout.strip() == "ran"
    assert "AtomicFunction" not in quiet.stderr
    assert "Other.__del__" in quiet.stderr and "a real problem" in quiet.stderr  # others still shown


def test_a_metric_tfma_could_not_compute_is_shown_as_n_a():
    shown = format_metrics({"precision": math.nan, "recall": 0.0, "auc": 0.5, "example_count": 7.0})
    assert shown == "auc=0.5000, precision=n/a, recall=0.0000"
    assert "nan" not in shown
