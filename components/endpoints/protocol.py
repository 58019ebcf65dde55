"""The ``endpoints`` area's contracts: the endpoints a batch of tasks runs on, and its result.

A planner (the ``task_placement`` group) sees the endpoints as :class:`Site` parameters and
*predicted* costs; what the tasks really cost is for the endpoints themselves: measured (live)
or scored by a ground truth (simulated), never shown to a planner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from components.base import ComponentConfig, LoomModel

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class Site:
    """One endpoint as the models see it (GreenFaaS's ``caws.Endpoint`` parameters).

    Attributes:
        name: The endpoint's name.
        slots: Workers per block.
        min_blocks: Blocks always up (1: always on, warm; 0: cold until a task comes).
        max_blocks: Most blocks it provisions.
        parallelism: Target slots per task before another block is added (Parsl's).
        static_w: Static power of one block while it is up (W).
        shutdown_s: How long an idle block above ``min_blocks`` stays up (the idle tail).
        cold_start_s: Time from the first task on a cold endpoint to its block being ready.

    """

    name: str
    slots: int
    min_blocks: int = 0
    max_blocks: int = 1
    parallelism: float = 0.5
    static_w: float = 0.0
    shutdown_s: float = 10.0
    cold_start_s: float = 0.0

    @property
    def cold(self) -> bool:
        """Whether no block is up before the first task."""
        return self.min_blocks == 0


@dataclass(frozen=True)
class TaskPlacement:
    """Where each task goes, and in which order tasks are sent.

    Attributes:
        endpoint: Endpoint index per task (in submission order).
        order: Task indices in the order they are dispatched.
        clusters: Number of groups placed whole (ClusterMHRA), else the task count.
        ordering: The task ordering that won (MHRA, ClusterMHRA), else ``identity``.

    """

    endpoint: IntArray
    order: IntArray
    clusters: int = 0
    ordering: str = "identity"


class ProfileCell(LoomModel):
    """One function on one endpoint: mean runtime and dynamic energy of a task."""

    runtime_s: float = Field(gt=0, description="mean runtime of a task (s)")
    energy_j: float = Field(ge=0, description="mean dynamic energy of a task (J)")


@dataclass(frozen=True)
class Workload:
    """A batch of tasks, all submitted at t = 0, in submission order.

    Attributes:
        functions: Index of each task's function (into the endpoints' ``functions``).
        features: Each task's features (tasks × features; the predictors' inputs).
        truth: What the tasks really cost, for scoring (simulation only; opaque to placers).

    """

    functions: IntArray
    features: FloatArray
    truth: tuple[FloatArray, FloatArray] | None = None

    @property
    def tasks(self) -> int:
        """Number of tasks."""
        return len(self.functions)


@dataclass(frozen=True)
class Executed:
    """A placement after it ran (live) or was scored (simulation).

    Attributes:
        makespan_s: Submission to the last task's end.
        dynamic_j: The tasks' dynamic energy.
        static_j: Static power while blocks were up (idle tails included).
        tasks: Tasks per endpoint.
        runtime_s: Each task's observed runtime.
        energy_j: Each task's observed dynamic energy.
        start_s: Each task's start, from the submission.
        measured: Which figures were measured here (live); the rest are simulated.
        emulated: Which figures (or inputs to them) stand for what this machine cannot show.

    """

    makespan_s: float
    dynamic_j: float
    static_j: float
    tasks: dict[str, int]
    runtime_s: FloatArray
    energy_j: FloatArray
    start_s: FloatArray
    measured: tuple[str, ...] = ()
    emulated: tuple[str, ...] = ()

    @property
    def energy_total_j(self) -> float:
        """Dynamic + static energy (J)."""
        return self.dynamic_j + self.static_j

    @property
    def edp_kj_s(self) -> float:
        """E [kJ] × T [s], as the authors' notebook computes it."""
        return self.energy_total_j / 1000 * self.makespan_s


@runtime_checkable
class Endpoints(Protocol):
    """What the ``endpoints`` group gives a scenario.

    ``sites`` are the endpoints as they are (the ground truth runs on them); ``plan_sites`` as
    the planner believes them to be (the same, unless a site's ``planning_slots`` says not).
    """

    sites: tuple[Site, ...]
    plan_sites: tuple[Site, ...]
    functions: tuple[str, ...]
    live: bool

    def workload(self, tasks_per_function: int, order: str, seed: int) -> Workload:
        """The batch: ``tasks_per_function`` tasks of each function, in ``order``."""

    def predictor(self, seed: int, watts_per_thread: float | None) -> Any:
        """The planning predictor (live: after profiling each function on each endpoint).

        Args:
            seed: Seed of the profiling tasks' inputs.
            watts_per_thread: The ``energy`` group's joules per CPU-second (live energy).

        """

    def run(
        self,
        placement: TaskPlacement,
        workload: Workload,
        used: tuple[int, ...],
        watts_per_thread: float | None,
    ) -> Executed:
        """Run (live) or score (simulation) a placement on the endpoints ``used``."""


class EndpointsConfig(ComponentConfig):
    """Base of the ``endpoints`` group's configs."""

    def build(self) -> Endpoints:
        """Create the endpoints (a live pool starts when the engine opens it)."""
        raise NotImplementedError
