"""``task_placement=mhra``: GreenFaaS's MHRA, each task where α·E/E_norm + (1−α)·T/T_norm is least.

As the authors' ``caws/strategy/mhra.py`` (read step by step in ``greenfaas.md`` §1.5): five
task orderings are tried, each placed greedily; the ordering whose final placement costs least
wins. ``faithful=True`` keeps the authors' quirk that a candidate's own cold start is left out
of its predicted makespan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from components.endpoints.protocol import IntArray, TaskPlacement
from components.task_placement._greedy import (
    ALPHA,
    FAITHFUL,
    Objective,
    greedy,
    orderings,
)
from components.task_placement._plan import PlanEndpoint
from components.task_placement.protocol import Problem, TaskPlacementConfig, TaskPlacer


class MhraConfig(TaskPlacementConfig):
    """MHRA: five task orderings, each task greedily where the objective is least."""

    kind: Literal["mhra"] = "mhra"
    alpha: float = ALPHA
    faithful: bool = FAITHFUL

    def build(self) -> TaskPlacer:
        """The placer."""
        return Mhra(self.alpha, self.faithful)


@dataclass
class Mhra:
    """Multi-heuristic resource allocation: each task greedily where the objective is least."""

    alpha: float = 0.5
    faithful: bool = False
    name: str = "mhra"

    def place(self, problem: Problem) -> TaskPlacement:
        """Try the five orderings; keep the cheapest final placement."""
        objective = Objective(problem, self.alpha, self.faithful)
        rt, en = problem.runtime_s.tolist(), problem.energy_j.tolist()

        def predict(e: int, plan: PlanEndpoint, task: int) -> tuple[float, float]:
            return plan.predict(rt[task][e], en[task][e])

        def commit(plan: PlanEndpoint, task: int, e: int) -> None:
            plan.schedule(rt[task][e], en[task][e])

        best: tuple[float, str, IntArray, IntArray] | None = None
        for label, order in orderings(problem.runtime_s, problem.energy_j).items():
            chosen, cost = greedy(
                problem, objective, order, faithful=self.faithful, predict=predict, commit=commit
            )
            if best is None or cost < best[0]:
                best = (cost, label, chosen, order)
        assert best is not None
        _, label, chosen, order = best
        return TaskPlacement(chosen, order, problem.tasks, label)
