"""The ``endpoints`` group: heterogeneous compute endpoints, simulated or live.

- ``simulated``: endpoints described by their parameters and a profile table (the authors'
  four endpoints and published profiles by default). Planning reads the table's means; the
  ground truth that scores a schedule is a separate object (the same means, or samples
  around them with ``variation``).
- ``live``: each endpoint is a real executor pool here (thread, process, or a Dask cluster by
  address); runtimes and per-task energy (the ``energy`` group's estimate) are measured and
  learned online. What the machine cannot show (static power, cold start, a more efficient
  CPU) is emulated per endpoint and reported as such.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import Field, model_validator

from components.base import ComponentConfig, LoomModel
from components.executor.dask import DaskExecutorConfig
from components.executor.process import ProcessExecutorConfig
from components.executor.thread import ThreadExecutorConfig
from components.task_placement import greenfaas
from components.task_placement.protocol import ProfileCell, Site

Table = dict[str, dict[str, ProfileCell]]


class SiteConfig(LoomModel):
    """One endpoint's parameters (GreenFaaS's ``caws.Endpoint``)."""

    slots: int = Field(ge=1, le=100_000, description="workers per block")
    min_blocks: int = Field(0, ge=0, le=1000, description="blocks always up (1: always on)")
    max_blocks: int = Field(1, ge=1, le=1000, description="most blocks it provisions")
    parallelism: float = Field(0.5, gt=0, le=1, description="target slots per task")
    static_w: float = Field(0.0, ge=0, le=1e6, description="static power of a block (W)")
    shutdown_s: float = Field(10.0, ge=0, le=86_400, description="idle time before shutdown")
    cold_start_s: float | None = Field(
        None, ge=0, le=86_400, description="first task to block ready (default: the group's)"
    )
    planning_slots: int | None = Field(
        None, ge=1, le=100_000, description="slots the planner believes it has (default: slots)"
    )

    @model_validator(mode="after")
    def _blocks_in_order(self) -> Self:
        if self.min_blocks > self.max_blocks:
            raise ValueError(f"min_blocks={self.min_blocks} is above max_blocks={self.max_blocks}")
        return self

    def site(
        self, name: str, cold_start_s: float, static_scale: float = 1.0, *, planned: bool = False
    ) -> Site:  # fmt: skip
        """The endpoint as the ground truth sees it, or (``planned``) as the planner does."""
        cold = self.cold_start_s if self.cold_start_s is not None else cold_start_s
        slots = self.planning_slots if planned and self.planning_slots else self.slots
        return Site(
            name, int(slots or 1), self.min_blocks, self.max_blocks, self.parallelism,
            self.static_w * static_scale, self.shutdown_s, cold,
        )  # fmt: skip


def _greenfaas_sites() -> dict[str, SiteConfig]:
    return {
        name: SiteConfig(slots=slots, min_blocks=min_blocks, static_w=static_w,
                         planning_slots=greenfaas.PLANNING_SLOTS.get(name))
        for name, (slots, min_blocks, static_w) in greenfaas.SITES.items()
    }  # fmt: skip


def _check_table(table: Mapping[str, Mapping[str, Any]], sites: list[str], known: set[str] | None,
                 functions: list[str]) -> None:  # fmt: skip
    """Every function known and every (function, endpoint) pair present."""
    if known is not None:
        unknown = sorted(set(table) - known)
        if unknown:
            raise ValueError(
                f"profiles: unknown function {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
    for function in functions:
        row = table.get(function, {})
        strangers = sorted(set(row) - set(sites))
        if strangers:
            raise ValueError(
                f"profiles.{function}: {', '.join(map(repr, strangers))} is not an endpoint "
                f"(endpoints: {', '.join(sites)})"
            )
        missing = [s for s in sites if s not in row]
        if missing:
            raise ValueError(
                f"profiles.{function}: no profile on {', '.join(missing)} "
                "(every function needs one on every endpoint)"
            )


class Variation(LoomModel):
    """Spread of the true costs around the profiles (0: the profiles exactly)."""

    runtime_cv: float = Field(0.0, ge=0, le=2, description="coefficient of variation of runtime")
    energy_cv: float = Field(0.0, ge=0, le=2, description="coefficient of variation of energy")


class SimulatedEndpointsConfig(ComponentConfig):
    """Endpoints simulated from parameters and a profile table (the authors' by default)."""

    kind: Literal["simulated"] = "simulated"
    sites: dict[str, SiteConfig] = Field(
        default_factory=_greenfaas_sites, description="endpoints by name, in order"
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
    variation: Variation = Field(default_factory=Variation)

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
        _check_table(table, list(self.sites), None, functions)
        return self

    def table(self) -> dict[str, dict[str, tuple[float, float]]]:
        """Function → endpoint → (runtime s, energy J)."""
        if self.profiles == "greenfaas":
            return {f: {e: v for e, v in row.items() if e in self.sites}
                    for f, row in greenfaas.PROFILES.items()}  # fmt: skip
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

    def build(self) -> Any:
        """The simulated endpoints."""
        from components.task_placement.simulated import SimulatedEndpoints

        return SimulatedEndpoints(self)


ExecutorChoice = Annotated[
    ThreadExecutorConfig | ProcessExecutorConfig | DaskExecutorConfig,
    Field(discriminator="kind"),
]


class LiveSiteConfig(SiteConfig):
    """An endpoint that is a real executor pool; its width is its slots."""

    slots: int | None = Field(  # type: ignore[assignment]
        None, ge=1, le=100_000, description="workers (default: the executor's width)"
    )
    executor: ExecutorChoice = Field(description="the pool: thread, process or dask (address)")
    power_scale: float = Field(
        1.0, gt=0, le=100, description="EMULATED: scale of measured dynamic energy (CPU type)"
    )

    @model_validator(mode="after")
    def _width(self) -> Self:
        if self.max_blocks != 1:
            raise ValueError(f"max_blocks={self.max_blocks}: a live endpoint is one pool (1)")
        width = _executor_width(self.executor)
        if self.slots is None:
            if width is None:
                raise ValueError("slots: give the width of a Dask cluster reached by address")
            self.slots = width
        return self


def _executor_width(executor: Any) -> int | None:
    if isinstance(executor, DaskExecutorConfig):
        if executor.address is not None:
            return None
        return (executor.n_workers or 2) * (executor.threads_per_worker or 1)
    return int(executor.max_workers)


class LiveEndpointsConfig(ComponentConfig):
    """Endpoints that are real executor pools here, profiled online."""

    kind: Literal["live"] = "live"
    sites: dict[str, LiveSiteConfig] = Field(description="endpoints by name, in order")
    functions: list[str] = Field(
        default_factory=lambda: ["bfs", "mst", "pagerank", "compression", "thumbnail", "matmul"],
        description="functions of the workload (bfs, mst, pagerank, compression, thumbnail, "
        "matmul)",
    )
    profiles: Literal["learned"] | Table = Field(
        "learned", description="learned (measured online) or function → endpoint → cell"
    )
    profile_tasks: int = Field(
        4, ge=2, le=1000, description="measured tasks per function and endpoint before placing"
    )
    cold_start_s: float = Field(1.0, ge=0, le=3600, description="EMULATED cold start")
    scale: float = Field(1.0, gt=0, le=100, description="size of every task (1: ~0.05-0.3 s)")

    @model_validator(mode="after")
    def _known_functions(self) -> Self:
        from components.task_placement.functions import LIVE_FUNCTIONS

        if not self.sites:
            raise ValueError("sites: give at least one endpoint")
        unknown = [f for f in self.functions if f not in LIVE_FUNCTIONS]
        if unknown or not self.functions:
            raise ValueError(
                f"functions={self.functions}: each must be one of {', '.join(LIVE_FUNCTIONS)}"
            )
        if not isinstance(self.profiles, str):
            _check_table(self.profiles, list(self.sites), set(LIVE_FUNCTIONS), self.functions)
        return self

    def build(self) -> Any:
        """The live endpoints (their pools start when the engine opens them)."""
        from components.task_placement.live import LiveEndpoints

        return LiveEndpoints(self)
