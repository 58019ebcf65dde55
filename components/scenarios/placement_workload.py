"""Placement workloads: item sizes, submit times and reliability targets from a trace CSV."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from components.placement.csv_rows import read_rows
from components.placement.reliability import TargetRng, random_targets

WORKLOAD_COLUMNS = ("size", "submit_time", "access_type")
WRITE = 2


class WorkloadError(ValueError):
    """A workload that cannot be replayed; the message names the file, line and field."""


@dataclass(frozen=True)
class ItemWorkload:
    """Items to place, in submission order.

    Attributes:
        sizes_mb: Item sizes (MB).
        submit_s: Submission times (seconds).
        targets: Reliability target of each item.

    """

    sizes_mb: NDArray[np.float64]
    submit_s: NDArray[np.int64]
    targets: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.sizes_mb)


def _columns(header: list[str]) -> tuple[int, int, int]:
    """Positions of size, submit time and access type (the reference's or our names)."""
    names = [h.strip().lower() for h in header]
    aliases = {
        "size": ("size", "size(mb)", "size_mb"),
        "submit_time": ("relative time (s)", "submit_time(s)", "submit_time", "submit_s"),
        "access_type": ("access type", "access_type"),
    }
    found = []
    for column, options in aliases.items():
        position = next((names.index(o) for o in options if o in names), None)
        if position is None:
            raise WorkloadError(
                f"missing column {column!r} (any of {', '.join(options)}); header is {header}"
            )
        found.append(position)
    return found[0], found[1], found[2]


def as_c_floats(values: Sequence[float], texts: Sequence[str]) -> NDArray[np.float64]:
    """Decimal texts rounded once to C ``float``s, as ``scanf("%f")`` reads them, as doubles.

    Going through a double first (``float(text)``, then to 32 bits) rounds twice, and a
    double that lands exactly halfway between two floats then goes to the even one even when
    the decimal lies above or below the midpoint: the Facebook trace's 16.48841381072998 MB
    becomes 16.4884148 instead of the reference's 16.4884129. Those midpoints, and only
    those, are settled here on the exact decimal.

    Args:
        values: ``float(text)`` of each text (already parsed and checked by the caller).
        texts: The decimals as written in the file.

    """
    doubles = np.asarray(values, dtype=np.float64)
    singles = doubles.astype(np.float32)
    toward = np.where(doubles > singles, np.float32(np.inf), np.float32(-np.inf))
    neighbours = np.nextafter(singles, toward.astype(np.float32))
    # Two floats sum exactly in a double, so the midpoint test is exact.
    halfway = (singles.astype(np.float64) + neighbours.astype(np.float64)) / 2 == doubles
    halfway &= singles.astype(np.float64) != doubles
    for i in np.flatnonzero(halfway).tolist():
        exact, double = Fraction(texts[i].strip()), Fraction(float(doubles[i]))
        # An exact tie keeps C's round-half-to-even, which the cast already did.
        if exact > double:
            singles[i] = max(singles[i], neighbours[i])
        elif exact < double:
            singles[i] = min(singles[i], neighbours[i])
    return singles.astype(np.float64)


def read_workload(
    path: Path, replay: int, target: float | None, seed: int, rng: TargetRng = "numpy"
) -> ItemWorkload:
    """Read the write items of a trace and replay them ``replay`` times.

    As the reference does, sizes are read as C floats (so 124.1 is 124.09999847…), each
    replay shifts the submit times by the trace's last submit time plus one second, and
    zero-size items are kept: they are placed (chunks of 0 MB), stored and counted like any
    other (the Facebook SWIM trace has some).

    Args:
        path: CSV with size (MB), submit time (s) and access type (2 = write) columns.
        replay: How many times to repeat the trace.
        target: Reliability target of every item, or None to draw one per item.
        seed: Seed of the per-item targets.
        rng: Generator of the per-item targets (``glibc``: the reference's own sequence).

    Raises:
        WorkloadError: unreadable file, missing columns, bad values, or no write items.

    """
    rows = read_rows(path, "workload", WorkloadError)
    try:
        size_at, time_at, access_at = _columns(rows[0])
    except WorkloadError as exc:
        raise WorkloadError(f"{path}: {exc}") from exc
    sizes: list[float] = []
    times: list[float] = []
    size_texts: list[str] = []
    time_texts: list[str] = []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            access = int(float(row[access_at]))
            size, when = float(row[size_at]), float(row[time_at])
        except (ValueError, IndexError) as exc:
            raise WorkloadError(f"{path}, line {line}: cannot read {row}: {exc}") from exc
        if access != WRITE:
            continue
        if not 0 <= size < math.inf:
            raise WorkloadError(
                f"{path}, line {line}: size {row[size_at].strip()!r} MB must be a number ≥ 0"
            )
        if not -math.inf < when < math.inf:
            raise WorkloadError(
                f"{path}, line {line}: submit time {row[time_at].strip()!r} s must be a number"
            )
        sizes.append(size)
        times.append(when)
        size_texts.append(row[size_at])
        time_texts.append(row[time_at])
    if not sizes:
        raise WorkloadError(f"{path}: no write items (access type {WRITE})")
    one_sizes = as_c_floats(sizes, size_texts)
    # roundf, as the reference rounds: halves away from zero (exact: a float in a double).
    as_float = as_c_floats(times, time_texts)
    one_times = np.trunc(as_float + np.copysign(0.5, as_float)).astype(np.int64)
    shifts = np.array([0] + [one_times[-1] * r + 1 for r in range(1, replay)], dtype=np.int64)
    submit = (shifts[:, None] + one_times[None, :]).ravel()
    count = len(one_sizes) * replay
    targets = random_targets(count, seed, rng) if target is None else np.full(count, target)
    return ItemWorkload(np.tile(one_sizes, replay), submit, targets)
