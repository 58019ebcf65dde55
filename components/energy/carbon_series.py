"""Grid carbon intensity: a constant, or a time series integrated over the run.

A series is a CSV of ``timestamp,g_per_kwh`` rows (ISO 8601 or Unix seconds). Each value holds
until the next timestamp; a run's intensity is the time-weighted mean over its interval.
"""

from __future__ import annotations

import bisect
import csv
import itertools
import logging
import math
import statistics
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

log = logging.getLogger(__name__)

# A step more than this many times the usual one is a gap in the series, not a sample.
GAP_FACTOR = 3.0


class CarbonSeriesError(ValueError):
    """A carbon-intensity series that cannot be used; the message names the file and line."""


def _timestamp(text: str) -> float:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class CarbonSeries:
    """Intensity (gCO2e/kWh) from ``times[i]`` until ``times[i + 1]``."""

    times: tuple[float, ...]
    values: tuple[float, ...]
    source: str = ""

    @classmethod
    def read(cls, path: Path) -> CarbonSeries:
        """Read and check a ``timestamp,g_per_kwh`` CSV.

        Raises:
            CarbonSeriesError: unreadable file, bad timestamp or value, timestamps out of
                order, a gap, or fewer than two rows.

        """
        try:
            with path.open(encoding="utf-8", newline="") as handle:
                rows = list(csv.reader(handle))
        except OSError as exc:
            raise CarbonSeriesError(f"{path}: cannot read the carbon series: {exc}") from None
        times: list[float] = []
        values: list[float] = []
        for line, row in enumerate(rows, start=1):
            if not row or not any(cell.strip() for cell in row):
                continue
            if line == 1 and not _is_number(row[-1]):
                continue  # the header
            if len(row) < 2:
                raise CarbonSeriesError(f"{path}, line {line}: expected timestamp,g_per_kwh")
            try:
                when = _timestamp(row[0])
            except ValueError:
                raise CarbonSeriesError(
                    f"{path}, line {line}: timestamp {row[0].strip()!r} is neither ISO 8601 "
                    "nor Unix seconds"
                ) from None
            if not _is_number(row[1]) or not 0 <= float(row[1]) < math.inf:
                raise CarbonSeriesError(
                    f"{path}, line {line}: intensity {row[1].strip()!r} must be a number ≥ 0 "
                    "(gCO2e/kWh)"
                )
            if times and when <= times[-1]:
                raise CarbonSeriesError(
                    f"{path}, line {line}: timestamp {row[0].strip()!r} does not come after "
                    "the previous one"
                )
            times.append(when)
            values.append(float(row[1]))
        if len(times) < 2:
            raise CarbonSeriesError(f"{path}: a carbon series needs at least two rows")
        steps = [b - a for a, b in itertools.pairwise(times)]
        usual = statistics.median(steps)
        for i, step in enumerate(steps):
            if step > GAP_FACTOR * usual:
                raise CarbonSeriesError(
                    f"{path}: gap of {step:g} s after {times[i]:.0f} (the usual step is "
                    f"{usual:g} s); fill it or split the series"
                )
        return cls(tuple(times), tuple(values), str(path))

    def mean(self, start: float, end: float) -> float:
        """Time-weighted mean intensity over ``[start, end]`` (Unix seconds)."""
        last_step = self.times[-1] - self.times[-2]
        covered = (self.times[0], self.times[-1] + last_step)
        if start < covered[0] or end > covered[1]:
            log.warning(
                "carbon series %s covers %.0f..%.0f; the run (%.0f..%.0f) is partly outside: "
                "the nearest values are used",
                self.source,
                covered[0],
                covered[1],
                start,
                end,
            )
        if end <= start:
            return self.values[self._index(start)]
        total = 0.0
        edges = [start, *(t for t in self.times if start < t < end), end]
        for left, right in itertools.pairwise(edges):
            total += self.values[self._index(left)] * (right - left)
        return total / (end - start)

    def _index(self, when: float) -> int:
        return max(0, bisect.bisect_right(self.times, when) - 1)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
