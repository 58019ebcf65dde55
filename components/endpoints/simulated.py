"""``endpoints=simulated``: endpoints and tasks from a profile table, scored by a ground truth."""

from __future__ import annotations

from typing import Literal, Self

import numpy as np
from pydantic import Field, model_validator

from components.base import LoomModel
from components.endpoints import _greenfaas as greenfaas
from components.endpoints._ground_truth import execute
from components.endpoints._predictors import TablePredictor
from components.endpoints._shared import SiteConfig, Table, check_table, greenfaas_sites, task_order
from components.endpoints.protocol import EndpointsConfig, Executed, TaskPlacement, Workload


class CostVariation(LoomModel):
    """Spread of the true costs around the profiles (0: the profiles exactly)."""

    runtime_cv: float = Field(0.0, ge=0, le=2, description="coefficient of variation of runtime")
    energy_cv: float = Field(0.0, ge=0, le=2, description="coefficient of variation of energy")


class SimulatedEndpointsConfig(EndpointsConfig):
    """Endpoints simulated from parameters and a profile table (the authors' by default)."""

    kind: Literal["simulated"] = "simulated"
    sites: dict[str, SiteConfig] = Field(
        default_factory=greenfaas_sites, description="endpoints by name, in order"
    )
    profiles: Literal["greenfaas"] | Table = Field(
        "greenfaas",
        description="greenfaas (published, greenfaas.md §1.7) or function → endpoint → "
        "{runtime_s, energy_j}",
    )
    functions: list[str] | None = Field(
        None, description="functions of the workload (default: the table's; greenfaas: 7 SeBS)"
    )
    cold_start_s: float = Field(
        greenfaas.COLD_START_S,
        ge=0,
        le=86_400,
        description="cold start of every cold endpoint (not published)",
    )
    static_power_scale: float = Field(
        1.0, ge=0, le=100, description="scale of every static power (not published)"
    )
    variation: CostVariation = Field(default_factory=CostVariation)

    @model_validator(mode="after")
    def _table_covers_the_workload(self) -> Self:
        if not self.sites:
            raise ValueError("sites: give at least one endpoint")
        table = self.table()
        functions = self.workload()
        unknown = [f for f in functions if f not in table]
        if unknown:
            raise ValueError(
                f"functions: unknown function {', '.join(map(repr, unknown))}; "
                f"the profile table has: {', '.join(table)}"
            )
        if not functions:
            raise ValueError("functions: give at least one function")
        check_table(table, list(self.sites), None, functions)
        return self

    def table(self) -> dict[str, dict[str, tuple[float, float]]]:
        """Function → endpoint → (runtime s, energy J)."""
        if self.profiles == "greenfaas":
            return {
                f: {e: v for e, v in row.items() if e in self.sites}
                for f, row in greenfaas.PROFILES.items()
            }
        assert not isinstance(self.profiles, str)
        return {
            f: {e: (cell.runtime_s, cell.energy_j) for e, cell in row.items()}
            for f, row in self.profiles.items()
        }

    def workload(self) -> list[str]:
        """The workload's functions."""
        if self.functions is not None:
            return list(self.functions)
        if self.profiles == "greenfaas":
            return list(greenfaas.FUNCTIONS)
        return list(self.table())

    def build(self) -> SimulatedEndpoints:
        """The simulated endpoints."""
        return SimulatedEndpoints(self)


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
        self,
        placement: TaskPlacement,
        workload: Workload,
        used: tuple[int, ...],
        watts_per_thread: float | None = None,
    ) -> Executed:
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
