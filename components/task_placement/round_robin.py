"""``task_placement=round_robin``: task i on endpoint i mod M, in the endpoints' order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from components.endpoints.protocol import TaskPlacement
from components.task_placement._greedy import identity_order
from components.task_placement.protocol import Problem, TaskPlacementConfig, TaskPlacer


class RoundRobinTasksConfig(TaskPlacementConfig):
    """Task i on endpoint i mod M, in the endpoints' order."""

    kind: Literal["round_robin"] = "round_robin"

    def build(self) -> TaskPlacer:
        """The placer."""
        return RoundRobinTasks()


@dataclass
class RoundRobinTasks:
    """Task i on endpoint i mod M, in the endpoints' order (``FCFS_RoundRobin``)."""

    name: str = "round_robin"

    def place(self, problem: Problem) -> TaskPlacement:
        """Deal the tasks out in submission order."""
        endpoint = np.arange(problem.tasks, dtype=np.int64) % len(problem.sites)
        return TaskPlacement(endpoint, identity_order(problem), problem.tasks)
