"""``profiles: measured``: the prototype's functions run here, through the energy meter.

Each function runs ``repeats`` times on one thread (the prototype's tasks hold one core each:
BLAS is limited to one thread while they run). Its CPU time becomes dynamic energy at the
run's watts per thread; the profiles of the four endpoints are then **emulated**: this
machine stands in for Desktop, and each endpoint's runtime and energy are this machine's
scaled by the published ratio of that endpoint to Desktop for the function
(:func:`components.scenarios.accounting_study.published_profiles`). Nothing here ran on those
machines, and the outputs say so.

``molecular`` is a stand-in: the prototype's ``compute_vertical`` needs xtb and RDKit, which
do not install here; a Lennard-Jones energy over three clusters of atoms (one per SMILES of
the prototype, sized by its heavy atoms × ``molecular_atoms``) plays its part.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from components.base import LoomModel
from components.scenarios.accounting_study import FUNCTIONS, TaskProfile

# The prototype's three molecules (CCC, C#CC12OC3CC1C2O3, CC1=NC(O)=NC=C1F): heavy atoms.
_MOLECULE_HEAVY_ATOMS = (3, 9, 9)


class MeasureConfig(LoomModel):
    """Sizes of the functions when ``profiles: measured`` runs them here.

    The prototype's sizes (4096², 500,000 nodes) take minutes on two cores; the defaults
    are smaller, and the scaling to endpoints uses ratios, so the size cancels out of which
    endpoint a policy picks but not out of the totals.
    """

    matmul_n: int = Field(2048, ge=16, le=8192, description="matrix side of matmul")
    cholesky_n: int = Field(2048, ge=16, le=8192, description="matrix side of Cholesky")
    pagerank_nodes: int = Field(200_000, ge=100, le=2_000_000, description="Barabasi graph size")
    molecular_atoms: int = Field(
        60, ge=1, le=2000, description="stand-in atoms per heavy atom of each molecule"
    )
    repeats: int = Field(3, ge=1, le=100, description="runs of each function; the mean is used")


@dataclass(frozen=True)
class LocalRun:
    """One function measured here: the mean of its runs."""

    function: str
    wall_s: float
    cpu_s: float
    dynamic_j: float


def _matmul(n: int, rng: np.random.Generator) -> None:
    a, b = rng.random((n, n)), rng.random((n, n))
    _ = a @ b


def _cholesky(n: int, rng: np.random.Generator) -> None:
    a = rng.random((n, n))
    a = a.T @ a + n * np.eye(n)  # Hermitian, and positive definite whatever the draw
    np.linalg.cholesky(a)


def _pagerank(nodes: int, rng: np.random.Generator) -> None:
    import random

    import igraph

    igraph.set_random_number_generator(random.Random(int(rng.integers(2**31))))
    igraph.Graph.Barabasi(nodes, 10).pagerank()


def _molecular(per_atom: int, rng: np.random.Generator) -> None:
    from scipy.spatial.distance import pdist

    for heavy in _MOLECULE_HEAVY_ATOMS:
        atoms = rng.random((heavy * per_atom, 3)) * (heavy * per_atom) ** (1 / 3) * 1.5
        r6 = pdist(atoms) ** -6
        _ = float(np.sum(4 * (r6 * r6 - r6)))


def _calls(config: MeasureConfig) -> dict[str, Callable[[np.random.Generator], None]]:
    return {
        "matmul": lambda rng: _matmul(config.matmul_n, rng),
        "cholesky": lambda rng: _cholesky(config.cholesky_n, rng),
        "pagerank": lambda rng: _pagerank(config.pagerank_nodes, rng),
        "molecular": lambda rng: _molecular(config.molecular_atoms, rng),
    }


def measure_here(config: MeasureConfig, watts_per_thread: float, seed: int) -> list[LocalRun]:
    """Run each function ``config.repeats`` times on one thread and average.

    Args:
        config: Function sizes and repeats.
        watts_per_thread: Dynamic power of a busy thread (the run's meter's, or the local
            profile's where the run is not metered).
        seed: Seeds the functions' inputs.

    """
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    runs = []
    with threadpool_limits(limits=1):
        for function, call in _calls(config).items():
            wall = cpu = 0.0
            for _ in range(config.repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                call(rng)
                wall += time.perf_counter() - t0
                cpu += time.process_time() - c0
            wall, cpu = wall / config.repeats, cpu / config.repeats
            runs.append(LocalRun(function, wall, cpu, cpu * watts_per_thread))
    return runs


def emulated_profiles(
    runs: list[LocalRun], published: dict[str, dict[str, TaskProfile]]
) -> dict[str, dict[str, TaskProfile]]:
    """Endpoint profiles from local runs: this machine as Desktop, scaled per endpoint."""
    table: dict[str, dict[str, TaskProfile]] = {}
    local = {r.function: r for r in runs}
    for function in FUNCTIONS:
        here, row = local[function], published[function]
        ref = row["desktop"]
        table[function] = {
            endpoint: TaskProfile(
                here.wall_s * cell.runtime_s / ref.runtime_s,
                here.dynamic_j * cell.dynamic_j / ref.dynamic_j,
                imputed=True,
            )
            for endpoint, cell in row.items()
        }
    return table
