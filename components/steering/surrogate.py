"""The campaigns' surrogate: the Colmena optimizer examples' Gaussian process and acquisition.

A scikit-learn pipeline, ``MinMaxScaler(−1, 1)`` then ``GaussianProcessRegressor(normalize_y,
RBF × Constant)``; candidates are ranked by (best − μ) / σ (the examples call it EI; it is a
z-score, a probability-of-improvement criterion) for minimisation.
"""

from __future__ import annotations

import warnings

import numpy as np


def rank(
    x: list[list[float]], y: list[float], candidates: np.ndarray, seed: int, noise: bool = True
) -> np.ndarray:
    """Candidate indices, most promising first, after fitting the GP on ``(x, y)``.

    A top-level function so that it can run as a task on any executor (``reallocation``).

    Args:
        x: Points evaluated.
        y: Their values.
        candidates: Points to rank.
        seed: The GP's seed.
        noise: Add a ``WhiteKernel``. The examples' kernel has none; on Ackley's ripples the
            GP then fits them as signal and ranks no better than chance.

    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler

    kernel = RBF() * ConstantKernel() + WhiteKernel() if noise else RBF() * ConstantKernel()
    model = Pipeline(
        [
            ("scale", MinMaxScaler(feature_range=(-1, 1))),
            ("gp", GaussianProcessRegressor(kernel=kernel, normalize_y=True, random_state=seed)),
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(np.asarray(x), np.asarray(y))
        mean, std = model.predict(candidates, return_std=True)
    score = (min(y) - mean) / np.maximum(std, 1e-9)
    return np.argsort(-score, kind="stable")
