"""One run per output folder at a time: two runs on the same --output would both run and both push.

An exclusive `flock` on <output>/.run.lock, held for the whole run and released by the kernel when the
process ends however it ends (no stale lock after a crash). The file names the holder, so the second run can
say which run it waits for. Local folders only: the cloud runners have their own run identity.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import sys
from typing import Iterator

LOCK_FILE = ".run.lock"
_held = set()  # output folders this process holds: taking the lock again inside is a no-op


class OutputInUseError(RuntimeError):
    """Another run holds the output folder."""


@contextlib.contextmanager
def output_lock(output_dir: str) -> Iterator[None]:
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.realpath(os.path.join(output_dir, LOCK_FILE))
    if path in _held:
        yield
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
        _held.add(path)
        try:
            yield
        finally:
            _held.discard(path)
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
