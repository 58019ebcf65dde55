"""Federated data: real or synthetic classification sets, split over workers by Dirichlet draws.

- ``digits``: scikit-learn's bundled 8 × 8 handwritten digits (1,797 samples, 10 classes; real
  data, no download), scaled to [0, 1];
- ``synthetic``: ``make_classification`` with as many samples as asked (enough for thousands of
  devices), seeded.

:func:`federated_split` is Flight's two-Dirichlet scheme: each worker's share of the samples
from Dirichlet(``samples_alpha``) and its label mix from Dirichlet(``labels_alpha``); larger α
is *more* even (Flight's docstring says the opposite). Every sample goes to at most one worker,
every worker gets at least one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

DatasetName = Literal["digits", "synthetic"]


@dataclass(frozen=True)
class Dataset:
    """Train and test arrays (float32 features, int64 labels)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int

    @property
    def features(self) -> int:
        """Features per sample."""
        return int(self.x_train.shape[1])


def load(
    name: DatasetName, seed: int, samples: int = 20_000, test_fraction: float = 0.2
) -> Dataset:
    """A dataset, split into train and test with a seeded stratified shuffle.

    The arrays are made once by scikit-learn in a short-lived helper process and cached on
    disk (``$LOOM_CACHE``, else ``~/.cache/loom``): importing scikit-learn costs a process
    146 MB that a long federation would hold for nothing. Later calls read the cache.

    Args:
        name: ``digits`` or ``synthetic``.
        seed: Seed of the split (and of the synthetic set).
        samples: Samples of the synthetic set (digits has 1,797).
        test_fraction: Share held out for the central test accuracy.

    """
    size = samples if name == "synthetic" else 0
    path = _cache_dir() / f"fl-{name}-{seed}-{size}-{test_fraction}.npz"
    if not path.exists():
        command = (
            "import sys; from components.fl.data import write; "
            "write(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), "
            "sys.argv[5])"
        )
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                command,
                name,
                str(seed),
                str(samples),
                str(test_fraction),
                str(path),
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"preparing data {name!r} failed: {tail[0]}")
    with np.load(path) as arrays:
        return Dataset(
            arrays["x_train"],
            arrays["y_train"],
            arrays["x_test"],
            arrays["y_test"],
            int(arrays["classes"]),
        )


def _cache_dir() -> Path:
    root = Path(os.environ.get("LOOM_CACHE") or Path.home() / ".cache" / "loom")
    root.mkdir(parents=True, exist_ok=True)
    return root


def make(name: DatasetName, seed: int, samples: int, test_fraction: float) -> Dataset:
    """The dataset made by scikit-learn, in this process (``load`` calls it in a helper)."""
    from sklearn.model_selection import train_test_split

    if name == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x, y = bunch.data / 16.0, bunch.target
    else:
        from sklearn.datasets import make_classification

        x, y = make_classification(
            n_samples=samples,
            n_features=64,
            n_informative=24,
            n_redundant=8,
            n_classes=10,
            n_clusters_per_class=2,
            class_sep=1.5,
            random_state=seed,
        )
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    return Dataset(
        x_train.astype(np.float32),
        y_train.astype(np.int64),
        x_test.astype(np.float32),
        y_test.astype(np.int64),
        10,
    )


def write(name: DatasetName, seed: int, samples: int, test_fraction: float, path: str) -> None:
    """Make the dataset and store it at ``path`` atomically (processes may race to it)."""
    data = make(name, seed, samples, test_fraction)
    target = Path(path)
    partial = target.with_name(f".{target.name}.{os.getpid()}.npz")
    np.savez(
        partial,
        x_train=data.x_train,
        y_train=data.y_train,
        x_test=data.x_test,
        y_test=data.y_test,
        classes=data.classes,
    )
    os.replace(partial, target)


def federated_split(
    labels: np.ndarray, workers: int, *, samples_alpha: float, labels_alpha: float, seed: int
) -> list[np.ndarray]:
    """Indices of each worker's samples.

    Raises:
        ValueError: Fewer samples than workers, or a non-positive α.

    """
    n = len(labels)
    if workers > n:
        raise ValueError(
            f"{workers} workers but only {n} training samples: each worker needs one "
            "(use data=synthetic with more samples, or fewer workers)"
        )
    if samples_alpha <= 0 or labels_alpha <= 0:
        raise ValueError(
            f"samples_alpha={samples_alpha}, labels_alpha={labels_alpha}: both must be > 0"
        )
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    # Sizes: Dirichlet shares of the samples, at least one each, summing to at most n.
    shares = rng.dirichlet(np.full(workers, samples_alpha))
    sizes = np.maximum(1, np.floor(shares * (n - workers)).astype(int) + 1)
    pools = {c: list(rng.permutation(np.flatnonzero(labels == c))) for c in classes}
    mixes = rng.dirichlet(np.full(len(classes), labels_alpha), size=workers)
    out: list[np.ndarray] = []
    for worker in range(workers):
        wanted = rng.multinomial(sizes[worker], mixes[worker])
        taken: list[int] = []
        short = 0
        for c, count in zip(classes, wanted, strict=True):
            got = min(int(count), len(pools[c]))
            taken += [pools[c].pop() for _ in range(got)]
            short += int(count) - got
        while short > 0:  # classes ran dry: fill from those that have samples left
            left = [c for c in classes if pools[c]]
            if not left:
                break
            taken.append(pools[left[int(rng.integers(len(left)))]].pop())
            short -= 1
        if not taken:  # every pool dry: only possible once n is spent, and sizes prevent it
            raise ValueError(f"worker {worker} got no samples")
        out.append(np.array(sorted(taken), dtype=np.int64))
    return out
