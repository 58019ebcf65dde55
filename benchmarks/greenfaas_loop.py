"""MHRA and ClusterMHRA written the way GreenFaaS's code runs them: the in-run peer.

Per task and endpoint the authors predict the task's runtime and energy with a call, deep-copy
the endpoint's mock, schedule the task on the copy and read its makespan and energy; the
objective sums every endpoint each time. This file follows that structure (from the step-by-step
description in greenfaas.md §1.5; no code of theirs), so ``placement_energy.py`` can time it
beside Loom's strategies in the same run and check that both choose the same endpoints.
"""

from __future__ import annotations

import copy

import numpy as np

from components.endpoints.protocol import Site, TaskPlacement
from components.task_placement.protocol import Problem


class MockEndpoint:
    """The authors' mock: a list of worker deadlines, replayed when a block is added."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.active_blocks = site.min_blocks
        self.active_slots = site.slots * site.min_blocks
        self.worker_deadlines = [0.0] * self.active_slots
        self.runtimes: list[float] = []
        self.active_tasks = 0
        self._runtime = 0.0
        self.total_task_energy = 0.0

    def schedule(self, runtime: float, energy: float) -> None:
        site = self.site
        self.active_tasks += 1
        if self.active_slots == 0 or (
            self.active_slots / self.active_tasks < site.parallelism
            and self.active_blocks < site.max_blocks
        ):
            self.active_blocks += 1
            self.active_slots += site.slots
            self.worker_deadlines = [0.0] * self.active_slots
            self._runtime = 0.0
            for earlier in self.runtimes:
                self._place(earlier)
        self._place(runtime)
        self.runtimes.append(runtime)
        self.total_task_energy += energy

    def _place(self, runtime: float) -> None:
        worker = min(range(len(self.worker_deadlines)), key=self.worker_deadlines.__getitem__)
        self.worker_deadlines[worker] += runtime
        self._runtime = max(self._runtime, self.worker_deadlines[worker])

    def energy(self) -> float:
        site = self.site
        static = self._runtime * self.active_blocks * site.static_w
        tail = (self.active_blocks - site.min_blocks) * site.shutdown_s * site.static_w
        return self.total_task_energy + static + tail

    def runtime(self) -> float:
        if self.site.cold and self._runtime > 0:
            return self._runtime + self.site.cold_start_s
        return self._runtime

    def predict(self, tasks: list[tuple[float, float]]) -> tuple[float, float]:
        mock = copy.deepcopy(self)
        for runtime, energy in tasks:
            mock.schedule(runtime, energy)
        return mock.runtime(), mock.energy()


def _predict_task(problem: Problem, task: int, endpoint: int) -> tuple[float, float]:
    """One prediction call per task and endpoint, as the authors' predictor is asked."""
    return float(problem.runtime_s[task, endpoint]), float(problem.energy_j[task, endpoint])


def _orders(rt: list[float], en: list[float]) -> dict[str, list[int]]:
    n = range(len(rt))
    return {
        "identity": list(n),
        "longest_processing_time": sorted(n, key=lambda i: -rt[i]),
        "shortest_processing_time": sorted(n, key=lambda i: rt[i]),
        "greatest_energy": sorted(n, key=lambda i: -en[i]),
        "least_energy": sorted(n, key=lambda i: en[i]),
    }


def _place(
    problem: Problem, alpha: float, items: list[list[int]]
) -> tuple[list[int], str, list[int]]:
    sites = problem.sites
    norm = MockEndpoint(sites[0])
    for task in range(problem.tasks):
        norm.schedule(*_predict_task(problem, task, 0))
    t_norm, e_norm = norm.runtime(), norm.energy()

    def cost(makespan: float, energy: float) -> float:
        return alpha * energy / e_norm + (1 - alpha) * makespan / t_norm

    first = [[_predict_task(problem, t, 0) for t in item] for item in items]
    rt = [sum(r for r, _ in costs) for costs in first]
    en = [sum(e for _, e in costs) for costs in first]
    best: tuple[float, str, list[int], list[int]] | None = None
    for label, order in _orders(rt, en).items():
        mocks = [MockEndpoint(site) for site in sites]
        chosen = [0] * len(items)
        for item in order:
            best_cost, best_e, best_costs = float("inf"), 0, []
            for e, mock in enumerate(mocks):
                costs = [_predict_task(problem, t, e) for t in items[item]]
                makespan_e, energy_e = mock.predict(costs)
                others = [m for j, m in enumerate(mocks) if j != e]
                makespan = max([makespan_e, *(m.runtime() for m in others)])
                energy = energy_e + sum(m.energy() for m in others)
                c = cost(makespan, energy)
                if c < best_cost:
                    best_cost, best_e, best_costs = c, e, costs
            for runtime, energy in best_costs:  # the fixed commit (not the authors' bug)
                mocks[best_e].schedule(runtime, energy)
            chosen[item] = best_e
        final = cost(max(m.runtime() for m in mocks), sum(m.energy() for m in mocks))
        if best is None or final < best[0]:
            best = (final, label, chosen, order)
    assert best is not None
    return best[2], best[1], best[3]


def mhra(problem: Problem, alpha: float) -> TaskPlacement:
    """MHRA, task by task, deep-copying mocks to predict."""
    chosen, label, order = _place(problem, alpha, [[t] for t in range(problem.tasks)])
    return TaskPlacement(np.asarray(chosen), np.asarray(order), problem.tasks, label)


def cluster_mhra(problem: Problem, alpha: float, groups: list[np.ndarray]) -> TaskPlacement:
    """ClusterMHRA over given clusters, deep-copying mocks to predict."""
    items = [g.tolist() for g in groups]
    chosen, label, order = _place(problem, alpha, items)
    endpoint = np.zeros(problem.tasks, dtype=np.int64)
    for c, group in enumerate(items):
        endpoint[group] = chosen[c]
    return TaskPlacement(endpoint, np.concatenate([groups[c] for c in order]), len(items), label)
