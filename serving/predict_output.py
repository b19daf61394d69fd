"""`predict --predictions FILE`: one row per image (file, class, probability per class) as CSV or JSON lines.

Rows are written as the batches are answered (and flushed per row), so a folder of 100k images never sits in
memory and a long run can be watched or resumed by reading the file. Stdlib only (`--help` stays instant).
"""

from __future__ import annotations

import csv
import json
import os
from typing import List, Optional, Sequence, TextIO

FORMATS = ("csv", "jsonl")
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


def output_format(path: str, given: Optional[str] = None) -> str:
    """--format, else from the file's extension (.csv; .jsonl, .ndjson, .json for JSON lines)."""
    if given:
        return given
    ext = os.path.splitext(path)[1].lower()
    if ext not in _EXTENSIONS:
        raise ValueError(f"--predictions {path!r}: cannot tell the format from {ext or 'no extension'!r}; "
                         f"use .csv or .jsonl, or --format {{{','.join(FORMATS)}}}")
    return _EXTENSIONS[ext]


class PredictionWriter:
    """Writes rows to an open text file; the probability columns are named after the classes (in class-id
    order) when known, else `class_<id>`."""

    def __init__(self, f: TextIO, fmt: str, class_names: Optional[Sequence[str]] = None):
        self.f, self.fmt, self.names = f, fmt, list(class_names) if class_names else None
        self._csv = csv.writer(f) if fmt == "csv" else None
        self.rows = 0

    def _columns(self, count: int) -> List[str]:
        if self.names and len(self.names) == count:
            return self.names
        return [f"class_{i}" for i in range(count)]

    def write(self, path: str, label: str, probabilities: Sequence[float]) -> None:
        columns = self._columns(len(probabilities))
        if self.fmt == "csv":
            if self.rows == 0:
                self._csv.writerow(["file", "class", *columns])
            self._csv.writerow([path, label, *(f"{p:.6f}" for p in probabilities)])
        else:
            self.f.write(json.dumps({"file": path, "class": label,
                                     "probabilities": {c: round(float(p), 6) for c, p in zip(columns, probabilities)}})
                         + "\n")
        self.f.flush()
        self.rows += 1
