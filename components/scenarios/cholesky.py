"""``scenario=cholesky``: TaPS's tiled Cholesky factorisation, checked against numpy.

A random symmetric positive-definite matrix is cut into ``block_size`` tiles; the
right-looking algorithm runs as a task graph (``potrf`` on the diagonal tile, ``trsm`` below
it, ``update`` of the trailing tiles), tiles passing from task to task through the data flow.
Unlike TaPS, nothing is collected on the client between steps: the client reads the tiles of
L once, at the end, and compares L with ``numpy.linalg.cholesky``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

import numpy as np
from pydantic import Field, model_validator

from components.base import RunContext, Scenario, ScenarioConfig
from components.runtime.trial import TASK_PATH_FAULTS, TaskTrial


def potrf(tile: np.ndarray) -> np.ndarray:
    """Factor a diagonal tile: its lower Cholesky factor."""
    return np.linalg.cholesky(tile)


def trsm(diagonal: np.ndarray, tile: np.ndarray) -> np.ndarray:
    """A tile of L below the diagonal: ``tile · L_kk⁻ᵀ``."""
    from scipy.linalg import solve_triangular

    return np.asarray(solve_triangular(diagonal, tile.T, lower=True).T)


def update(tile: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """A trailing tile after a step: ``A_ij − L_ik · L_jkᵀ``."""
    return np.asarray(tile - left @ right.T)


def spd_matrix(n: int, seed: int) -> np.ndarray:
    """A random symmetric positive-definite matrix."""
    m = np.random.default_rng(seed).random((n, n))
    return m @ m.T + n * np.eye(n)


class CholeskyConfig(ScenarioConfig):
    """TaPS cholesky: tiled factorisation of a random SPD matrix as a task graph."""

    kind: Literal["cholesky"] = "cholesky"
    requires: ClassVar[tuple[str, ...]] = ("executor", "dataflow")
    fault_kinds: ClassVar[frozenset[str]] = TASK_PATH_FAULTS
    # CPU-bound on every executor worker: its makespan is the figure, so it runs alone.
    exclusive: ClassVar[bool] = True
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "makespan_s",
        "tasks",
        "max_abs_error",
        "result_verified",
        "store_keys_leaked",
    )

    matrix_size: int = Field(1000, ge=1, le=30_000, description="n of the n × n matrix")
    block_size: int = Field(250, ge=1, le=30_000, description="tile side; must divide n")
    seed: int | None = Field(None, ge=0, description="matrix seed; null uses the run's seed")

    @model_validator(mode="after")
    def _tiles(self) -> Self:
        if self.matrix_size % self.block_size:
            raise ValueError(
                f"block_size={self.block_size} does not divide matrix_size={self.matrix_size}"
            )
        return self

    def build(self) -> Scenario:
        """Create the scenario."""
        return Cholesky(self)


class Cholesky:
    """One trial: factor on the executor, compare with numpy."""

    def __init__(self, config: CholeskyConfig) -> None:
        self.config = config

    def run(self, ctx: RunContext) -> None:
        """Submit the tile graph, assemble L, check it."""
        cfg = self.config
        n, b = cfg.matrix_size, cfg.block_size
        t = n // b
        a = spd_matrix(n, ctx.seed if cfg.seed is None else cfg.seed)
        trial = TaskTrial(ctx)
        with trial as path, ctx.progress.bar(f"trial {ctx.trial}: cholesky", None):
            tiles: dict[tuple[int, int], Any] = {
                (i, j): np.ascontiguousarray(a[i * b : (i + 1) * b, j * b : (j + 1) * b])
                for i in range(t)
                for j in range(i + 1)
            }
            for k in range(t):
                # Tiles of L are read by later tasks and by the client: kept until the end.
                tiles[k, k] = path.submit(potrf, tiles[k, k], name="potrf", keep=True)
                for i in range(k + 1, t):
                    tiles[i, k] = path.submit(
                        trsm, tiles[k, k], tiles[i, k], name="trsm", keep=True
                    )
                for i in range(k + 1, t):
                    for j in range(k + 1, i + 1):
                        tiles[i, j] = path.submit(
                            update, tiles[i, j], tiles[i, k], tiles[j, k], name="update"
                        )
            path.wait()
            ok = all(task.success for task in path.tasks)
            lower = np.zeros_like(a)
            if ok:
                for (i, j), handle in tiles.items():
                    lower[i * b : (i + 1) * b, j * b : (j + 1) * b] = np.asarray(handle.value)
        error = float(np.max(np.abs(lower - np.linalg.cholesky(a)))) if ok else float("inf")
        verified = ok and bool(np.allclose(lower, np.linalg.cholesky(a), rtol=1e-8, atol=1e-8))
        trial.record(
            {
                "tasks": float(len(path.tasks)),
                "max_abs_error": error,
                "result_verified": float(verified),
            }
        )
