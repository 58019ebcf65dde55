"""``task_placement=single``: every task on one endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from components.endpoints.protocol import TaskPlacement
from components.task_placement._greedy import identity_order
from components.task_placement.protocol import Problem, TaskPlacementConfig, TaskPlacer


class SingleConfig(TaskPlacementConfig):
    """Every task on one endpoint."""

    kind: Literal["single"] = "single"
    endpoint: str = Field("faster", min_length=1, description="the endpoint's name")

    def build(self) -> TaskPlacer:
        """The placer."""
        return SingleEndpoint(self.endpoint)


@dataclass
class SingleEndpoint:
    """Every task on one endpoint (``FCFS_RoundRobin([endpoint])``)."""

    endpoint: str
    name: str = "single"

    def index(self, problem: Problem) -> int:
        """The endpoint's column."""
        names = [s.name for s in problem.sites]
        if self.endpoint not in names:
            raise ValueError(
                f"task_placement.endpoint={self.endpoint!r} is not an endpoint; "
                f"choose one of: {', '.join(names)}"
            )
        return names.index(self.endpoint)

    def place(self, problem: Problem) -> TaskPlacement:
        """All tasks on the endpoint, in submission order."""
        column = self.index(problem)
        endpoint = np.full(problem.tasks, column, dtype=np.int64)
        return TaskPlacement(endpoint, identity_order(problem), problem.tasks)
