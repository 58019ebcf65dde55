"""Reading the simulator's CSV inputs (node sets, workloads, failure traces)."""

from __future__ import annotations

import csv
from pathlib import Path


def read_rows(path: Path, what: str, error: type[ValueError]) -> list[list[str]]:
    """All rows of a CSV file (header first), or ``error`` naming the file and the problem."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle, skipinitialspace=True))
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from exc
    if not rows:
        raise error(f"{path}: empty {what} file")
    return rows
