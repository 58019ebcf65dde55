"""The ``task_placement`` area's contracts: a placement problem, a placement, a placer.

A placer sees only *predictions*: per task and endpoint, a runtime and a dynamic energy, as
arrays (one row per task, one column per endpoint, in the ``endpoints`` group's order). What
the tasks really cost is for the scoring model (:mod:`components.endpoints._ground_truth`),
a separate object that a placer never sees: planning may be wrong, scoring must not be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from components.base import ComponentConfig
from components.endpoints.protocol import FloatArray, Site, TaskPlacement


@dataclass(frozen=True)
class Problem:
    """What a placer decides on: the tasks' predictions over the endpoints.

    Attributes:
        sites: The endpoints, in order (the first is the normaliser of MHRA's objective).
        runtime_s: Predicted runtime, tasks × endpoints.
        energy_j: Predicted dynamic energy, tasks × endpoints.
        seed: Seed of any random choice (ClusterMHRA's embedding noise).

    """

    sites: tuple[Site, ...]
    runtime_s: FloatArray
    energy_j: FloatArray
    seed: int = 0

    @property
    def tasks(self) -> int:
        """Number of tasks."""
        return int(self.runtime_s.shape[0])


@runtime_checkable
class TaskPlacer(Protocol):
    """Chooses an endpoint for every task of a batch."""

    name: str

    def place(self, problem: Problem) -> TaskPlacement:
        """Place every task (all at once; none deferred)."""


class TaskPlacementConfig(ComponentConfig):
    """Base of the ``task_placement`` group's configs."""

    def build(self) -> TaskPlacer:
        """Create the placer."""
        raise NotImplementedError
