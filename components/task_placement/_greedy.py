"""TaskPlacement strategies: single endpoint, round robin, fastest, least energy, MHRA, ClusterMHRA.

MHRA and ClusterMHRA follow GreenFaaS's code (``caws/strategy/{mhra,cluster_mhra}.py``, read
step by step in ``greenfaas.md`` §1.5): the objective is α·E/E_norm + (1−α)·T/T_norm, where T
is the predicted makespan over all endpoints, E their predicted energy, and the normalisers
those of every task run on the first endpoint. Five task orderings are tried, each placed
greedily; the ordering whose final placement costs least wins.

``faithful=True`` reproduces the authors' code exactly, quirks included: a candidate's own cold
start is left out of its predicted makespan, and ClusterMHRA commits the last-evaluated
endpoint's predictions to the chosen endpoint's model. By default both are fixed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pydantic import Field

from components.endpoints.protocol import FloatArray, IntArray
from components.task_placement._plan import PlanEndpoint
from components.task_placement.protocol import Problem

ORDERINGS = (
    "identity",
    "longest_processing_time",
    "shortest_processing_time",
    "greatest_energy",
    "least_energy",
)


def identity_order(problem: Problem) -> IntArray:
    return np.arange(problem.tasks, dtype=np.int64)


def orderings(runtime_s: FloatArray, energy_j: FloatArray) -> dict[str, IntArray]:
    """The five orderings of items, keyed on their first-endpoint predictions (stable sorts)."""
    rt, en = runtime_s[:, 0], energy_j[:, 0]

    def by(key: FloatArray) -> IntArray:
        return np.argsort(key, kind="stable").astype(np.int64)

    return {
        "identity": np.arange(len(rt), dtype=np.int64),
        "longest_processing_time": by(-rt),
        "shortest_processing_time": by(rt),
        "greatest_energy": by(-en),
        "least_energy": by(en),
    }


class Objective:
    """α·E/E_norm + (1−α)·T/T_norm, normalised on every task run on the first endpoint."""

    def __init__(self, problem: Problem, alpha: float, faithful: bool) -> None:
        norm = PlanEndpoint(problem.sites[0], faithful=faithful)
        norm.schedule_many(problem.runtime_s[:, 0].tolist(), problem.energy_j[:, 0].tolist())
        t_norm, e_norm = norm.runtime(), norm.energy()
        self.w_time = (1 - alpha) / t_norm if t_norm > 0 else 0.0
        self.w_energy = alpha / e_norm if e_norm > 0 else 0.0

    def __call__(self, makespan: float, energy: float) -> float:
        """The cost of a (makespan, energy) pair."""
        return self.w_energy * energy + self.w_time * makespan


# (endpoint index, its plan, item) → that endpoint's makespan and energy if the item went there.
Predict = Callable[[int, PlanEndpoint, int], tuple[float, float]]
# (plan, item, endpoint whose predictions are committed): commit the item to the plan.
Commit = Callable[[PlanEndpoint, int, int], None]


def greedy(
    problem: Problem,
    objective: Objective,
    order: IntArray,
    *,
    faithful: bool,
    predict: Predict,
    commit: Commit,
    commit_last_evaluated: bool = False,
) -> tuple[IntArray, float]:
    """Place items in ``order``, each where the objective is least.

    Args:
        problem: The endpoints (the items are the caller's: tasks or clusters).
        objective: The cost of a (makespan, energy) pair.
        order: Item indices in the order they are placed.
        faithful: Plan endpoints with the authors' cold-start quirk.
        predict: An endpoint's (makespan, energy) were the item added to it.
        commit: Add the item to a plan, with the predictions of a given endpoint.
        commit_last_evaluated: The authors' ClusterMHRA bug: commit the predictions of the last
            endpoint evaluated (not the chosen one's) to the chosen endpoint.

    Returns:
        The endpoint of each item (indexed by item) and the final placement's cost.

    """
    plans = [PlanEndpoint(site, faithful=faithful) for site in problem.sites]
    runtimes = [p.runtime() for p in plans]
    energies = [p.energy() for p in plans]
    chosen = np.zeros(len(order), dtype=np.int64)
    count = len(plans)
    last = count - 1
    for item in order.tolist():
        # The others' makespan is the largest runtime but the candidate's: the top two suffice.
        first = max(range(count), key=runtimes.__getitem__)
        second_best = max((runtimes[e] for e in range(count) if e != first), default=0.0)
        total_energy = sum(energies)
        best, best_cost = 0, float("inf")
        for e, plan in enumerate(plans):
            makespan_e, energy_e = predict(e, plan, item)
            others = second_best if e == first else runtimes[first]
            cost = objective(max(makespan_e, others), total_energy - energies[e] + energy_e)
            if cost < best_cost:  # strictly lower: ties go to the earlier endpoint
                best, best_cost = e, cost
        target = plans[best]
        commit(target, item, last if commit_last_evaluated else best)
        runtimes[best], energies[best] = target.runtime(), target.energy()
        chosen[item] = best
    return chosen, objective(max(runtimes), sum(energies))


ALPHA = Field(0.5, ge=0, le=1, description="weight of energy against time (0: time only)")
FAITHFUL = Field(
    False, description="reproduce the authors' quirk: a candidate's own cold start left out"
)
