"""ClusterMHRA: Ward-cluster the tasks by their predicted costs, then place whole clusters.

As in GreenFaaS's ``cluster_mhra.py``:

1. each task's embedding is its (runtime s, energy µJ) on every endpoint, plus U(−1, 1) noise
   (the authors' units: the noise matters for runtimes and not for energies);
2. a Ward tree is built on the embeddings; walking its merges in order, two clusters merge only
   if both still exist and each costs (energy on the first endpoint) below the threshold,
   0.25 × the largest idle-tail energy (static power × shutdown time) of any endpoint;
3. the clusters, with runtime and energy the sums of their tasks', go through MHRA's five
   orderings and its greedy placement, each cluster whole onto one endpoint.

The authors' code commits, after choosing an endpoint for a cluster, the predictions of the
*last endpoint evaluated* to the chosen endpoint's model; ``faithful=True`` keeps that bug.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from components.endpoints.protocol import IntArray, TaskPlacement
from components.task_placement._greedy import ALPHA, Objective, greedy, orderings
from components.task_placement._plan import PlanEndpoint
from components.task_placement.protocol import Problem, TaskPlacementConfig, TaskPlacer

THRESHOLD_SHARE = 0.25
MICRO = 1e6  # the authors' energies are µJ


def threshold_j(problem: Problem, share: float = THRESHOLD_SHARE) -> float:
    """``share`` × the largest idle-tail energy of an endpoint (J)."""
    return share * max(site.static_w * site.shutdown_s for site in problem.sites)


def cluster_tasks(problem: Problem, threshold: float) -> list[IntArray]:
    """Groups of task indices (each in submission order), in the order the tree leaves them.

    Args:
        problem: The tasks' predictions.
        threshold: Clusters whose first-endpoint energy (J) reaches this stop merging.

    """
    n = problem.tasks
    if n < 3:
        return [np.arange(n, dtype=np.int64)] if n else []
    from scipy.cluster.hierarchy import linkage

    rng = np.random.default_rng(problem.seed)
    embedding = np.empty((n, 2 * len(problem.sites)))
    embedding[:, 0::2] = problem.runtime_s
    embedding[:, 1::2] = problem.energy_j * MICRO
    embedding += rng.uniform(-1.0, 1.0, embedding.shape)
    merges = linkage(embedding, method="ward")
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    cost: dict[int, float] = {i: float(problem.energy_j[i, 0]) for i in range(n)}
    for step, (left, right) in enumerate(merges[:, :2].astype(np.int64).tolist()):
        if left in members and right in members and max(cost[left], cost[right]) < threshold:
            members[n + step] = members.pop(left) + members.pop(right)
            cost[n + step] = cost.pop(left) + cost.pop(right)
    return [np.sort(np.asarray(m, dtype=np.int64)) for m in members.values()]


class ClusterMhraConfig(TaskPlacementConfig):
    """ClusterMHRA: Ward clusters of similar tasks, each placed whole as MHRA would."""

    kind: Literal["cluster_mhra"] = "cluster_mhra"
    alpha: float = ALPHA
    faithful: bool = Field(
        False,
        description="reproduce the authors' bug (the last-evaluated endpoint's predictions "
        "are committed to the chosen one) and their cold-start quirk",
    )
    threshold_share: float = Field(
        0.25,
        gt=0,
        le=100,
        description="merge threshold: this share of the largest idle-tail energy",
    )

    def build(self) -> TaskPlacer:
        """The placer."""
        return ClusterMhra(self.alpha, self.faithful, self.threshold_share)


@dataclass
class ClusterMhra:
    """MHRA over clusters of similar tasks: fewer, larger decisions."""

    alpha: float = 0.5
    faithful: bool = False
    threshold_share: float = THRESHOLD_SHARE
    name: str = "cluster_mhra"

    def place(self, problem: Problem) -> TaskPlacement:
        """Cluster, then try the five orderings over clusters; keep the cheapest placement."""
        objective = Objective(problem, self.alpha, self.faithful)
        groups = cluster_tasks(problem, threshold_j(problem, self.threshold_share))
        if not groups:
            empty = np.zeros(0, dtype=np.int64)
            return TaskPlacement(empty, empty, 0)
        rt = [problem.runtime_s[g].T.tolist() for g in groups]  # cluster → endpoint → runtimes
        en = [problem.energy_j[g].T.tolist() for g in groups]
        sums_rt = np.array([[sum(r) for r in cluster] for cluster in rt])
        sums_en = np.array([[sum(x) for x in cluster] for cluster in en])

        def predict(e: int, plan: PlanEndpoint, c: int) -> tuple[float, float]:
            return plan.predict_many(rt[c][e], en[c][e])

        def commit(plan: PlanEndpoint, c: int, e: int) -> None:
            plan.schedule_many(rt[c][e], en[c][e])

        best: tuple[float, str, IntArray, IntArray] | None = None
        for label, order in orderings(sums_rt, sums_en).items():
            chosen, cost = greedy(
                problem,
                objective,
                order,
                faithful=self.faithful,
                predict=predict,
                commit=commit,
                commit_last_evaluated=self.faithful,
            )
            if best is None or cost < best[0]:
                best = (cost, label, chosen, order)
        assert best is not None
        _, label, chosen, order = best
        endpoint = np.zeros(problem.tasks, dtype=np.int64)
        for c, group in enumerate(groups):
            endpoint[group] = chosen[c]
        dispatch = np.concatenate([groups[c] for c in order.tolist()])
        return TaskPlacement(endpoint, dispatch, len(groups), label)
