"""D-Rex's reliability model: node failure probabilities and the Poisson-binomial survival.

An item stored as N chunks, any K of which rebuild it, survives when at most N − K of its
nodes fail. With independent failures X ~ Poisson-binomial(p_1..p_N), the item meets its
target R when P[X ≤ N − K] ≥ R. Everything here is exact (no normal approximation).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from components.placement._glibc_rand import RAND_MAX, GlibcRandom

FloatArray = NDArray[np.float64]


def failure_probability(afr_pct: float, days: float = 365.0) -> float:
    """Probability that a node with this annual failure rate (percent) fails within ``days``."""
    return 1.0 - math.exp(-(afr_pct / 100.0) * days / 365.0)


def daily_failure_rate(afr_pct: float) -> float:
    """Per-day failure probability equivalent to an annual failure rate (percent)."""
    return float(1.0 - (1.0 - afr_pct / 100.0) ** (1.0 / 365.0))


def failure_pmf(p_fail: Sequence[float] | FloatArray) -> FloatArray:
    """P[X = j] for j = 0..N, X the number of failed nodes (exact O(N²) recurrence)."""
    pmf = np.zeros(len(p_fail) + 1)
    pmf[0] = 1.0
    for count, p in enumerate(p_fail, start=1):
        # Same update order as the reference: each count folds one more node in.
        pmf[1 : count + 1] = pmf[1 : count + 1] * (1.0 - p) + pmf[:count] * p
        pmf[0] *= 1.0 - p
    return pmf


def survival_cdf(p_fail: Sequence[float] | FloatArray) -> FloatArray:
    """P[X ≤ t] for t = 0..N: the chance that at most t of these nodes fail."""
    return np.cumsum(failure_pmf(p_fail))


def as_threshold(target: float) -> float:
    """The target as the reference compares it: rounded to a C ``float`` (32 bits).

    The reference passes targets as ``float``, so 0.99999 is compared as 0.99998999…;
    following the code keeps our (N, K) choices identical to its published outputs.
    """
    return float(np.float32(target))


def meets(p_fail: Sequence[float] | FloatArray, k: int, target: float) -> bool:
    """Whether N = len(p_fail) chunks with K = ``k`` data chunks meet ``target``."""
    n = len(p_fail)
    if not 1 <= k <= n:
        return False
    if isinstance(p_fail, np.ndarray):
        key = tuple(p_fail.tolist())
    else:
        key = tuple(float(p) for p in p_fail)
    return _cached_cdf(key)[n - k] >= _threshold(target)


@lru_cache(maxsize=1024)
def _threshold(target: float) -> float:
    return as_threshold(target)


@lru_cache(maxsize=1 << 16)
def _cached_cdf(p_fail: tuple[float, ...]) -> tuple[float, ...]:
    """Survival CDF of a node set; the baselines ask about the same few sets again and again."""
    return tuple(float(v) for v in survival_cdf(p_fail))


def max_k_from_cdf(cdf: FloatArray, n: int, target: float) -> int | None:
    """Largest K in [2, N − 1] with P[X ≤ N − K] ≥ target, from a precomputed CDF.

    Like the reference's ``get_max_K``, K = 1 (pure replication) is never proposed, so two
    nodes never suffice.
    """
    threshold = as_threshold(target)
    for k in range(n - 1, 1, -1):
        if cdf[n - k] >= threshold:
            return k
    return None


def max_k(p_fail: Sequence[float] | FloatArray, target: float) -> int | None:
    """Largest K in [2, N − 1] meeting ``target`` on these nodes, or None if none does."""
    return max_k_from_cdf(survival_cdf(p_fail), len(p_fail), target)


def max_k_matrix(cdf: FloatArray, sizes: NDArray[np.int64], target: float) -> NDArray[np.int64]:
    """Vectorized :func:`max_k_from_cdf` over many node sets (0 where none meets the target).

    Args:
        cdf: One row per node set, P[X ≤ t] in column t (rows padded with 1.0).
        sizes: N of each row.
        target: The reliability target.

    """
    threshold = as_threshold(target)
    columns = np.arange(cdf.shape[1])
    # Tolerated failures t = N - K must lie in [1, N - 2] (K in [2, N - 1]).
    allowed = (columns[None, :] >= 1) & (columns[None, :] <= sizes[:, None] - 2)
    ok = (cdf >= threshold) & allowed
    first = ok.argmax(axis=1)
    return np.where(ok.any(axis=1), sizes - first, 0).astype(np.int64)


TargetRng = Literal["numpy", "glibc"]


def random_targets(count: int, seed: int, rng: TargetRng = "numpy") -> FloatArray:
    """Per-item targets as the reference draws them: c ~ U{0..5} nines, R ~ U[base, 1].

    base = Σ_{i<c} 0.9·10^{-i} (0, 0.9, 0.99, …, 0.99999).

    Args:
        count: Items, in submission order.
        seed: Seed of the draws.
        rng: ``numpy`` (a numpy Generator) or ``glibc``: the reference's own sequence, glibc's
            ``rand()`` after ``srand(seed)``, drawn as its ``generate_reliability()`` does
            (``rand() % 6`` nines, then ``base + rand() / RAND_MAX · (1 − base)``), so that
            random-target runs match the reference number for number.

    """
    draws = _glibc_draws(seed) if rng == "glibc" else _numpy_draws(seed)
    bases = [0.0]
    for i in range(5):  # summed in the reference's order, so the doubles are identical
        bases.append(bases[-1] + 0.9 / 10.0**i)
    targets = np.empty(count)
    for item, (nines, unit) in zip(range(count), draws, strict=False):
        base = bases[nines]
        targets[item] = base + unit * (1.0 - base)
    return targets


def _glibc_draws(seed: int) -> Iterator[tuple[int, float]]:
    """(nines, uniform) pairs as ``generate_reliability()``: rand() % 6, rand() / RAND_MAX."""
    source = GlibcRandom(seed)
    while True:
        nines = source.rand() % 6
        yield nines, source.rand() / RAND_MAX


def _numpy_draws(seed: int) -> Iterator[tuple[int, float]]:
    generator = np.random.default_rng(seed)
    while True:
        nines = int(generator.integers(0, 6))
        yield nines, float(generator.random())
