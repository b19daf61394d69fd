"""The local MLMD store (SQLite): opening it, its execution states, and telling a damaged file early.

At the bottom of the package (no TF or TFX): the run's supervisor, the report and the closing lines all read
the same store. ml_metadata is imported on first use, so the CLI's checks before a run (check_metadata, with
sqlite3) stay instant.
"""

from __future__ import annotations

import os
import sqlite3
import time


def __getattr__(name: str):
    if name == "State":  # metadata_store_pb2.Execution.State, imported on first use
        from ml_metadata.proto import metadata_store_pb2

        return metadata_store_pb2.Execution.State
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def store(metadata_path: str):
    """The ml_metadata MetadataStore over the SQLite file (created if absent)."""
    import ml_metadata as mlmd
    from ml_metadata.proto import metadata_store_pb2

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    return mlmd.MetadataStore(config)


class CorruptMetadataError(ValueError):
    """<output>/metadata.sqlite is not a readable SQLite database (exit 1, one line)."""


def check_metadata(metadata_path: str) -> None:
    """An existing metadata store must be a sound SQLite database (`PRAGMA quick_check`); otherwise MLMD fails
    later with a traceback ('database disk image is malformed') that names neither the file nor the way out."""
    if not os.path.isfile(metadata_path):
        return
    try:
        problems = _quick_check(metadata_path)
    except sqlite3.OperationalError as err:
        if _in_use(err):  # in use, not damaged: MLMD waits for it itself
            return
        problems = [str(err)]
    except sqlite3.DatabaseError as err:  # e.g. "file is not a database"
        problems = [str(err)]
    if problems != ["ok"]:
        folder = os.path.dirname(metadata_path) or "."
        raise CorruptMetadataError(
            f"the pipeline metadata {metadata_path!r} is damaged ({problems[0]}): move it aside (e.g. mv "
            f"{metadata_path} {metadata_path}.damaged; the next run then starts afresh, without cached steps) "
            f"or use another --output than {folder!r}")


BUSY_WAIT_S, BUSY_POLL_S = 30.0, 0.25


def _quick_check(metadata_path: str):
    """`PRAGMA quick_check`'s rows, waiting up to BUSY_WAIT_S while another process holds the write lock: in
    BUSY_POLL_S steps, since Python runs signal handlers only between them (one 30 s wait inside SQLite left
    Ctrl-C unanswered for 30 s)."""
    deadline = time.monotonic() + BUSY_WAIT_S
    while True:
        attempt = time.monotonic()
        try:
            connection = sqlite3.connect(metadata_path, timeout=BUSY_POLL_S)
            try:
                return [row[0] for row in connection.execute("PRAGMA quick_check")]
            finally:
                connection.close()
        except sqlite3.OperationalError as err:
            if not _in_use(err) or time.monotonic() >= deadline:
                raise
            time.sleep(max(0.0, BUSY_POLL_S - (time.monotonic() - attempt)))  # SQLite may answer "busy" at once


def _in_use(err: sqlite3.OperationalError) -> bool:
    return "locked" in str(err) or "busy" in str(err)
