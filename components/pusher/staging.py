"""Names for a push's temporary copies that tell whose they are, and the removal of those a killed run left.

A push copies the model to `<model dir>/.staging-<host>-<pid>-<random>` and writes the model config to
`<serving dir>/models.config.tmp-<host>-<pid>-<random>` before renaming either into place. A push that fails
removes its own; a process killed with SIGKILL cannot. The run's supervisor (local/supervisor.py) removes,
after a run's process is gone and before each run, the temporary copies of processes of this host that no
longer live; those of live pushes (another run on the same serving dir) are left alone. Local folders only.
Standard library only: the supervisor imports no TF or TFX.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from typing import List

MODEL_PREFIX = ".staging-"
CONFIG_PREFIX = "models.config.tmp-"


def name(prefix: str) -> str:
    return f"{prefix}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def _owner_gone(entry: str, prefix: str) -> bool:
    host, sep, rest = entry[len(prefix):].rpartition("-")  # <host>-<pid>-<random>: the host may hold dashes
    host, _, pid = host.rpartition("-")
    if not sep or host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def remove_stale(model_dir: str) -> List[str]:
    """Removes the temporary copies, for `<serving dir>/<model name>`, of pushes whose process is gone; returns
    their paths."""
    removed = []
    model_dir = model_dir.rstrip("/")
    for folder, prefix in ((model_dir, MODEL_PREFIX), (os.path.dirname(model_dir), CONFIG_PREFIX)):
        if "://" in folder or not os.path.isdir(folder):
            continue
        for entry in os.listdir(folder):
            path = os.path.join(folder, entry)
            if entry.startswith(prefix) and _owner_gone(entry, prefix):
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
                removed.append(path)
    return removed
