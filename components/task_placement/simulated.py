"""``endpoints=simulated``: endpoints and tasks from a profile table, scored by a ground truth."""

from __future__ import annotations

import numpy as np

from components.task_placement.endpoints import SimulatedEndpointsConfig
from components.task_placement.ground_truth import execute
from components.task_placement.predictors import TablePredictor
from components.task_placement.protocol import Executed, Placement, Workload

ORDERS = ("function_major", "interleaved", "shuffled")


def task_order(functions: int, per_function: int, order: str, seed: int) -> np.ndarray:
    """Function index of each task in submission order."""
    major = np.repeat(np.arange(functions, dtype=np.int64), per_function)
    if order == "function_major":  # the authors': all bfs tasks, then all compression, ...
        return major
    if order == "interleaved":
        return np.tile(np.arange(functions, dtype=np.int64), per_function)
    return np.random.default_rng(seed).permutation(major)


class SimulatedEndpoints:
    """The endpoints of a profile table; tasks cost the table's means, or samples around them."""

    live = False

    def __init__(self, config: SimulatedEndpointsConfig) -> None:
        self.config = config
        self.sites = tuple(
            site.site(name, config.cold_start_s, config.static_power_scale)
            for name, site in config.sites.items()
        )
        self.plan_sites = tuple(
            site.site(name, config.cold_start_s, config.static_power_scale, planned=True)
            for name, site in config.sites.items()
        )
        self.functions = tuple(config.workload())
        self._table = TablePredictor(self.functions, [s.name for s in self.sites], config.table())

    def workload(self, tasks_per_function: int, order: str, seed: int) -> Workload:
        """The batch, with its true costs drawn (lognormal around the means when varied)."""
        functions = task_order(len(self.functions), tasks_per_function, order, seed)
        features = np.zeros((len(functions), 0))
        runtime, energy = self._table.predict(functions, features)
        variation = self.config.variation
        rng = np.random.default_rng(seed + 1)
        runtime = runtime * _spread(rng, variation.runtime_cv, runtime.shape)
        energy = energy * _spread(rng, variation.energy_cv, energy.shape)
        return Workload(functions, features, (runtime, energy))

    def predictor(self, seed: int, watts_per_thread: float | None) -> TablePredictor:
        """The table's means (planning sees no spread)."""
        del seed, watts_per_thread
        return self._table

    def run(
        self, placement: Placement, workload: Workload, used: tuple[int, ...],
        watts_per_thread: float | None = None,
    ) -> Executed:  # fmt: skip
        """Score the placement against the workload's true costs."""
        del watts_per_thread
        assert workload.truth is not None
        runtime, energy = workload.truth
        return execute(placement, self.sites, runtime, energy, used)


def _spread(rng: np.random.Generator, cv: float, shape: tuple[int, ...]) -> np.ndarray:
    """Lognormal factors of mean 1 and coefficient of variation ``cv``."""
    if cv == 0:
        return np.ones(shape)
    sigma = np.sqrt(np.log1p(cv**2))
    return rng.lognormal(-(sigma**2) / 2, sigma, shape)
