"""D-Rex's cost model: storage, parallel transfer times, and encode/decode times.

Encode and decode times come from a plane ``t = c0 + c1·n + c2·k`` (ms) fitted by least squares
to measured times for objects of 1, 10, 50, 100, 200 and 400 MB, scaled linearly from the
nearest reference size to the item's size.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

REFERENCE_SIZES_MB = (1, 10, 50, 100, 200, 400)
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = "data/drex"  # the authors' inputs: node sets, traces, measured coding times
CLIENT_BANDWIDTH_MB_S = 3125.0  # the client's outgoing link in the reference


def data_path(value: str) -> Path:
    """``value`` as given if it exists, else relative to the project (where ``data/`` lives)."""
    path = Path(value).expanduser()
    return path if path.exists() or path.is_absolute() else PROJECT_ROOT / path


@dataclass(frozen=True)
class Plane:
    """Least-squares plane of measured times (ms) over (n, k)."""

    intercept: float
    slope_n: float
    slope_k: float

    def ms_at(self, n: int, k: int) -> float:
        """Predicted time (ms) of one (n, k) at the plane's reference size."""
        return self.intercept + self.slope_n * n + self.slope_k * k

    def ms(self, n: int | NDArray[np.int64], k: int | NDArray[np.int64]) -> NDArray[np.float64]:
        """Predicted time (ms) at the plane's reference size."""
        return np.asarray(self.intercept + self.slope_n * n + self.slope_k * k, dtype=np.float64)


def fit_plane(path: Path) -> Plane:
    """Fit a plane to one ``n, k, avg_time`` table (tab or whitespace separated)."""
    rows = []
    with path.open(encoding="utf-8") as handle:
        for row in csv.reader(handle, delimiter="\t"):
            try:
                rows.append([float(v) for v in row[:3]])
            except ValueError:
                continue  # the header
    table = np.array(rows)
    design = np.column_stack([np.ones(len(table)), table[:, 0], table[:, 1]])
    coefficients, *_ = np.linalg.lstsq(design, table[:, 2], rcond=None)
    return Plane(*(float(c) for c in coefficients))


@dataclass
class CodingTimes:
    """Encode and decode time models, one plane per reference size."""

    encode: tuple[Plane, ...]
    decode: tuple[Plane, ...]

    @classmethod
    def load(cls, folder: Path) -> CodingTimes:
        """Fit ``encode_<S>MB.tsv`` and ``decode_<S>MB.tsv`` for every reference size."""
        try:
            return cls(
                tuple(fit_plane(folder / f"encode_{s}MB.tsv") for s in REFERENCE_SIZES_MB),
                tuple(fit_plane(folder / f"decode_{s}MB.tsv") for s in REFERENCE_SIZES_MB),
            )
        except OSError as exc:
            raise ValueError(f"cannot read the coding time tables in {folder}: {exc}") from exc


@dataclass
class NearestSize:
    """The reference size whose planes price an item, as the reference picks it.

    The reference compares the item's size truncated to an integer with the reference
    sizes and keeps the closest, but never resets its answer: an item closest to 1 MB keeps
    the previous item's choice. We follow the code. Until an item moves it, the 1 MB planes
    price items at ``start_mb``: 1 MB by default; the simulator uses 0, as the reference does
    (its first items, when smaller than 5.5 MB, cost an infinite time: see
    :func:`coding_seconds`).
    """

    index: int = 0
    sizes: tuple[int, ...] = field(default=REFERENCE_SIZES_MB)
    start_mb: float = 1.0
    moved: bool = False

    def update(self, size_mb: float) -> int:
        """Move to the reference size closest to ``size_mb``; return its index."""
        target = int(size_mb)
        best = abs(target - self.sizes[0])
        for i in range(1, len(self.sizes)):
            if abs(target - self.sizes[i]) < best:
                best = abs(target - self.sizes[i])
                self.index, self.moved = i, True
        return self.index

    @property
    def size_mb(self) -> float:
        """The reference size now in use."""
        return self.sizes[self.index] if self.moved else self.start_mb


def coding_seconds(
    plane: Plane,
    n: int | NDArray[np.int64],
    k: int | NDArray[np.int64],
    reference_mb: float,
    size_mb: float,
) -> float | NDArray[np.float64]:
    """Encode (or decode) time in seconds of an item, scaled from the reference size.

    A reference size of 0 gives what C's arithmetic gives: ±inf, or NaN for a 0 MB item.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.float64(size_mb) / np.float64(reference_mb)
        return plane.ms(n, k) * scale / 1000.0


def parallel_seconds(
    size_mb: float, k: int | NDArray[np.int64], slowest_mb_s: float | NDArray[np.float64]
) -> float | NDArray[np.float64]:
    """Time to move an item's chunks in parallel: max(S / client link, (S/K) / slowest node)."""
    return np.maximum(size_mb / CLIENT_BANDWIDTH_MB_S, (size_mb / k) / slowest_mb_s)
