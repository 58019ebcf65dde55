"""Predicting a task's runtime and dynamic energy on each endpoint, for a whole batch at once.

Two predictors, one interface (``predict(functions, features) → runtime, energy``, arrays of
tasks × endpoints):

- :class:`TablePredictor`: a profile table's means (the authors' published profiles, or one
  a user gives);
- :class:`LeastSquaresPredictor`: learned online from measured tasks, as GreenFaaS's
  ``predict_func`` does: per (function, endpoint), non-negative least squares of runtime on
  [features, 1] and, separately, of average power (energy / runtime); predicted energy is
  predicted power × predicted runtime.

Prediction is vectorised: one matrix product per function covers every task of that function
on every endpoint (the authors predict task by task, endpoint by endpoint).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from components.endpoints.protocol import FloatArray, IntArray


class Predictor(Protocol):
    """Predicts tasks × endpoints runtime (s) and dynamic energy (J)."""

    def predict(self, functions: IntArray, features: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Runtime and energy of each task (``functions[i]`` indexes ``self.functions``)."""


class TablePredictor:
    """Means from a profile table: function → endpoint → (runtime s, energy J).

    Args:
        functions: The functions, in the index order tasks use.
        endpoints: The endpoints, in column order.
        table: The profiles.

    """

    def __init__(
        self,
        functions: Sequence[str],
        endpoints: Sequence[str],
        table: Mapping[str, Mapping[str, tuple[float, float]]],
    ) -> None:
        self.functions, self.endpoints = tuple(functions), tuple(endpoints)
        cells = [[table[f][e] for e in endpoints] for f in functions]
        values = np.asarray(cells, dtype=np.float64).reshape(len(functions), len(endpoints), 2)
        self.runtime_s, self.energy_j = values[..., 0], values[..., 1]

    def predict(self, functions: IntArray, features: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Each task's row of the table (features are not used)."""
        del features
        return self.runtime_s[functions], self.energy_j[functions]


def nnls_fit(x: FloatArray, y: FloatArray) -> FloatArray:
    """Non-negative least squares of ``y`` on ``x`` (scipy's NNLS)."""
    from scipy.optimize import nnls

    coef, _ = nnls(x, y)
    return np.asarray(coef, dtype=np.float64)


class LeastSquaresPredictor:
    """Learned from measured tasks: NNLS of runtime, and of average power, on [features, 1].

    Args:
        functions: The functions, in the index order tasks use.
        endpoints: The endpoints, in column order.
        features: Number of continuous features of a task.

    """

    def __init__(self, functions: Sequence[str], endpoints: Sequence[str], features: int) -> None:
        self.functions, self.endpoints = tuple(functions), tuple(endpoints)
        self.features = features
        # (function, endpoint) → rows of [features..., runtime, energy].
        self._seen: dict[tuple[int, int], list[list[float]]] = defaultdict(list)
        shape = (len(functions), len(endpoints), features + 1)
        self._runtime_coef = np.zeros(shape)
        self._power_coef = np.zeros(shape)

    def observe(
        self,
        function: int,
        endpoint: int,
        features: Sequence[float],
        runtime_s: float,
        energy_j: float,
    ) -> None:
        """Record one measured task (call :meth:`fit` before predicting)."""
        self._seen[(function, endpoint)].append([*features, runtime_s, energy_j])

    def observed(self) -> int:
        """Number of tasks recorded."""
        return sum(len(rows) for rows in self._seen.values())

    def fit(self) -> None:
        """Refit every (function, endpoint) pair from what was observed.

        Raises:
            ValueError: A pair has no measured task (the authors raise here too).

        """
        missing = [
            f"{self.functions[f]} on {self.endpoints[e]}"
            for f in range(len(self.functions))
            for e in range(len(self.endpoints))
            if not self._seen.get((f, e))
        ]
        if missing:
            raise ValueError(f"no measured task to learn from for: {', '.join(missing)}")
        for (f, e), rows in self._seen.items():
            data = np.asarray(rows, dtype=np.float64)
            x = np.column_stack([data[:, : self.features], np.ones(len(data))])
            runtime, energy = data[:, -2], data[:, -1]
            self._runtime_coef[f, e] = nnls_fit(x, runtime)
            positive = runtime > 0
            power = np.where(positive, energy / np.where(positive, runtime, 1.0), 0.0)
            self._power_coef[f, e] = nnls_fit(x[positive], power[positive])

    def predict(self, functions: IntArray, features: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Runtime and energy of each task on each endpoint, one product per function."""
        n = len(functions)
        runtime = np.zeros((n, len(self.endpoints)))
        power = np.zeros_like(runtime)
        x = np.column_stack([features.reshape(n, self.features), np.ones(n)])
        for f in np.unique(functions).tolist():
            rows = functions == f
            runtime[rows] = x[rows] @ self._runtime_coef[f].T
            power[rows] = x[rows] @ self._power_coef[f].T
        runtime = np.maximum(runtime, 1e-6)  # a runtime of zero would make a task free
        return runtime, power * runtime


def relative_error(predicted: FloatArray, observed: FloatArray) -> float:
    """The authors' prediction error: mean |pred − obs| / (pred + obs) (0: exact, 1: worst)."""
    total = predicted + observed
    keep = total > 0
    if not keep.any():
        return 0.0
    return float(np.mean(np.abs(predicted - observed)[keep] / total[keep]))
