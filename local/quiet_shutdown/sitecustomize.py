"""Put on PYTHONPATH by `tfx-image-finetune run` (local/run_guard.py) for itself and its Beam workers.

TensorFlow 2.16's AtomicFunction.__del__ fails with a TypeError when it runs during interpreter shutdown (its
module's globals are already None), and Python prints that as "Exception ignored in ...". It is harmless, and
only that exact report is dropped; every other unraisable exception is printed as before. Any other
sitecustomize on the path still runs.
"""

import os
import sys


def _quiet_atomic_function_del(unraisable, _default=sys.__unraisablehook__, _isinstance=isinstance,
                               _getattr=getattr, _TypeError=TypeError):
    try:
        if (_isinstance(unraisable.exc_value, _TypeError)
                and _getattr(unraisable.object, "__qualname__", "") == "AtomicFunction.__del__"):
            return
    except BaseException:  # noqa: BLE001 - at shutdown anything may be gone: fall back to Python's report
        pass
    _default(unraisable)


sys.unraisablehook = _quiet_atomic_function_del


def _chain_next_sitecustomize():
    here = os.path.dirname(os.path.abspath(__file__))
    saved = sys.path[:]
    module = sys.modules.pop(__name__, None)
    try:
        sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
        import sitecustomize  # noqa: F401 - the next one on the path, if any
    except ImportError:
        pass
    finally:
        sys.path[:] = saved
        if module is not None:
            sys.modules[__name__] = module


_chain_next_sitecustomize()
