"""One run per output folder at a time: two runs on the same --output would both run and both push.

An exclusive `flock` on <output>/.run.lock, held for the whole run and released by the kernel when the
process ends however it ends (no stale lock after a crash). The file names the holder, so the second run can
say which run it waits for. Local folders only: the cloud runners have their own run identity.

The run's own process (local/supervisor.py) inherits the locked descriptor, so the lock stays held while
either process lives; `inherited` tells that process it holds the lock already.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import sys
from typing import Dict, Iterator, Optional

LOCK_FILE = ".run.lock"
_held: Dict[str, Optional[int]] = {}  # output folder -> locked descriptor this process holds (None: inherited)


class OutputInUseError(RuntimeError):
    """Another run holds the output folder."""


def _lock_path(output_dir: str) -> str:
    return os.path.realpath(os.path.join(output_dir, LOCK_FILE))


def inherited(output_dir: str) -> None:
    """This process holds the folder's lock through a descriptor its parent locked and passed on."""
    _held[_lock_path(output_dir)] = None


@contextlib.contextmanager
def output_lock(output_dir: str) -> Iterator[Optional[int]]:
    """Holds the folder's lock; yields the locked descriptor (None where the lock was already held)."""
    os.makedirs(output_dir, exist_ok=True)
    path = _lock_path(output_dir)
    if path in _held:
        yield None
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
            raise OutputInUseError(
                f"{output_dir!r} is in use by a running pipeline ({holder}); wait for it to finish or use another "
                "--output") from None
        started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, started {started}: {' '.join(sys.argv)}\n".encode(), 0)
        _held[path] = fd
        try:
            yield fd
        finally:
            _held.pop(path, None)
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
