"""``task_placement=fastest``: each task where its predicted runtime is least."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from components.endpoints.protocol import TaskPlacement
from components.task_placement._greedy import identity_order
from components.task_placement.protocol import Problem, TaskPlacementConfig, TaskPlacer


class FastestConfig(TaskPlacementConfig):
    """Each task on the endpoint with its least predicted runtime."""

    kind: Literal["fastest"] = "fastest"

    def build(self) -> TaskPlacer:
        """The placer."""
        return Fastest()


@dataclass
class Fastest:
    """Each task on the endpoint with its least predicted runtime (load is not considered)."""

    name: str = "fastest"

    def place(self, problem: Problem) -> TaskPlacement:
        """Argmin of predicted runtime per task; ties go to the earlier endpoint."""
        endpoint = np.argmin(problem.runtime_s, axis=1).astype(np.int64)
        return TaskPlacement(endpoint, identity_order(problem), problem.tasks)
