"""The optimizer campaign's objective: the 4-D Ackley function, evaluated as a timed task.

Colmena's ``optimizer-examples`` minimise Ackley (a = 20, b = 0.2, c = 2π; minimum 0 at the
origin) on [−32.768, 32.768]^d, each evaluation sleeping for a log-normally drawn time. The
times here are drawn by the campaign from its seed and passed in, so a run repeats exactly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

BOUND = 32.768


def ackley(x: Sequence[float], a: float = 20.0, b: float = 0.2, c: float = 2 * math.pi) -> float:
    """Ackley's function at ``x`` (0 at the origin, about 20 far from it)."""
    v = np.asarray(x, dtype=np.float64)
    d = len(v)
    term1 = -a * math.exp(-b * math.sqrt(float(np.sum(v**2)) / d))
    term2 = -math.exp(float(np.sum(np.cos(c * v))) / d)
    return term1 + term2 + a + math.e


def evaluate(
    x: list[float], runtime_s: float, crash_attempts: int = 0, _result: Any = None
) -> float:
    """One evaluation task: wait ``runtime_s`` (the simulation's cost), return Ackley at ``x``.

    Args:
        x: The point.
        runtime_s: How long the evaluation takes.
        crash_attempts: Its first this many attempts crash (failure injection).
        _result: Colmena's request, passed in by its method wrapper (the attempt count).

    Raises:
        RuntimeError: An injected crash.

    """
    crash_if_injected(x, crash_attempts, _result)
    time.sleep(runtime_s)
    return ackley(x)


def crash_if_injected(x: list[float], crash_attempts: int, result: Any) -> None:
    """Raise on the first ``crash_attempts`` attempts of a task (``result``: Colmena's request).

    Raises:
        RuntimeError: An injected crash.

    """
    attempt = 0 if result is None else int(result.retries)
    if attempt < crash_attempts:
        raise RuntimeError(f"injected crash of attempt {attempt + 1} at x={x}")


def runtimes(count: int, median_s: float, sigma: float, seed: int) -> list[float]:
    """Log-normal evaluation times: median ``median_s``, log-space spread ``sigma``."""
    rng = np.random.default_rng(seed + 101)
    times: list[float] = (median_s * np.exp(sigma * rng.standard_normal(count))).tolist()
    return times
