"""The real campaign: hyper-parameter search for a small neural network on scikit-learn's digits.

Each task trains a one-hidden-layer MLP (scikit-learn's ``MLPClassifier``, Adam) on 2/3 of the
8×8 digits (1,797 images, 10 classes) and returns its error on the other third, to minimise.
A point of the search box [−1, 1]^4 maps to the hyper-parameters on log scales:

| coordinate | hyper-parameter | range |
|---|---|---|
| 0 | hidden units | 8 – 128 (log 2) |
| 1 | L2 penalty ``alpha`` | 1e-6 – 1e-1 (log 10) |
| 2 | learning rate | 1e-4 – 1e-1 (log 10) |
| 3 | epochs | 2 – 40 |

The data travel with every task as an argument (about 0.5 MB), so with ``dataflow=proxystore``
they go by reference.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from components.steering.ackley import crash_if_injected

BOUND = 1.0
DIM = 4


def load(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training images and labels, validation images and labels (a stratified 2:1 split)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    images, labels = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(
        (images / 16.0).astype(np.float32),
        labels,
        test_size=1 / 3,
        stratify=labels,
        random_state=seed,
    )
    return x_train, y_train, x_val, y_val


def hyperparameters(x: list[float]) -> dict[str, Any]:
    """The MLP's settings at point ``x`` of [−1, 1]^4 (clipped to the box)."""
    u = (np.clip(np.asarray(x, dtype=np.float64), -1, 1) + 1) / 2
    return {
        "hidden": round(float(2 ** (3 + 4 * u[0]))),
        "alpha": float(10 ** (-6 + 5 * u[1])),
        "learning_rate": float(10 ** (-4 + 3 * u[2])),
        "epochs": round(float(2 + 38 * u[3])),
    }


def train_digits(
    x: list[float], data: tuple[np.ndarray, ...], crash_attempts: int = 0, _result: Any = None
) -> float:
    """One task: train the MLP that ``x`` describes on ``data``; its validation error.

    Args:
        x: The point (see the module's table).
        data: ``load``'s four arrays.
        crash_attempts: Its first this many attempts crash (failure injection).
        _result: Colmena's request, passed in by its method wrapper (the attempt count).

    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    crash_if_injected(x, crash_attempts, _result)
    settings = hyperparameters(x)
    x_train, y_train, x_val, y_val = data
    model = MLPClassifier(
        hidden_layer_sizes=(settings["hidden"],),
        alpha=settings["alpha"],
        learning_rate_init=settings["learning_rate"],
        max_iter=settings["epochs"],
        batch_size=64,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_train, y_train)
    return float(1.0 - model.score(x_val, y_val))
