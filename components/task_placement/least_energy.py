"""``task_placement=least_energy``: each task where its predicted dynamic energy is least."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from components.endpoints.protocol import TaskPlacement
from components.task_placement._greedy import identity_order
from components.task_placement.protocol import Problem, TaskPlacementConfig, TaskPlacer


class LeastEnergyConfig(TaskPlacementConfig):
    """Each task on the endpoint with its least predicted dynamic energy."""

    kind: Literal["least_energy"] = "least_energy"

    def build(self) -> TaskPlacer:
        """The placer."""
        return LeastEnergy()


@dataclass
class LeastEnergy:
    """Each task on the endpoint with its least predicted dynamic energy."""

    name: str = "least_energy"

    def place(self, problem: Problem) -> TaskPlacement:
        """Argmin of predicted energy per task; ties go to the earlier endpoint."""
        endpoint = np.argmin(problem.energy_j, axis=1).astype(np.int64)
        return TaskPlacement(endpoint, identity_order(problem), problem.tasks)
