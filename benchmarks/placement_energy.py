"""Scheduling overhead of the task placement strategies (issue 16), against two peers.

Run:  python benchmarks/placement_energy.py [--quick] [--repeats 5]
Prints the table and writes results/benchmarks/placement_energy.{md,json}.

For 8 … 2,048 tasks of the synthetic workload (the 7 SeBS functions in turn, function-major)
on the authors' four endpoints, the time to predict every task on every endpoint and place
the batch (median of ``--repeats``), for each strategy, beside:

- the authors' published overhead (``scheduler_overhead.jsonl``: MHRA 13.9 s and ClusterMHRA
  0.67 s at 2,048 tasks; their code needs forked funcX and Parsl and cannot run here);
- the same algorithms written the way the authors' code runs them (``greenfaas_loop.py``: a
  prediction call per task and endpoint, a deep copy of the mock per question), timed in the
  same run; the table says whether it chose the same endpoints as Loom's.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import greenfaas_loop  # benchmarks/ is the script's folder
import numpy as np
from tables import publish

from components.endpoints import greenfaas
from components.endpoints.protocol import TaskPlacement
from components.endpoints.simulated import SimulatedEndpoints, SimulatedEndpointsConfig
from components.task_placement.cluster_mhra import ClusterMhra, cluster_tasks, threshold_j
from components.task_placement.fastest import Fastest
from components.task_placement.least_energy import LeastEnergy
from components.task_placement.mhra import Mhra
from components.task_placement.protocol import Problem
from components.task_placement.round_robin import RoundRobinTasks

ALPHA = 0.5
SIZES = (8, 32, 128, 256, 512, 1024, 2048)


def workload(endpoints: SimulatedEndpoints, tasks: int) -> tuple[np.ndarray, np.ndarray]:
    per = -(-tasks // len(endpoints.functions))
    batch = endpoints.workload(per, "function_major", 0)
    return batch.functions[:tasks], batch.features[:tasks]


def timed(run: Callable[[], TaskPlacement], repeats: int) -> tuple[float, TaskPlacement]:
    times, placement = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        placement = run()
        times.append(time.perf_counter() - started)
    assert placement is not None
    return statistics.median(times), placement


def measure(endpoints: SimulatedEndpoints, tasks: int, repeats: int) -> list[dict[str, object]]:
    """One row per strategy at ``tasks`` tasks."""
    predictor = endpoints.predictor(0, None)
    functions, features = workload(endpoints, tasks)

    def problem() -> Problem:
        runtime, energy = predictor.predict(functions, features)  # vectorised, every task
        return Problem(endpoints.plan_sites, runtime, energy, seed=0)

    fixed = problem()
    groups = cluster_tasks(fixed, threshold_j(fixed))
    strategies: dict[
        str, tuple[Callable[[], TaskPlacement], Callable[[], TaskPlacement] | None]
    ] = {
        "round_robin": (lambda: RoundRobinTasks().place(problem()), None),
        "fastest": (lambda: Fastest().place(problem()), None),
        "least_energy": (lambda: LeastEnergy().place(problem()), None),
        "mhra": (lambda: Mhra(ALPHA).place(problem()), lambda: greenfaas_loop.mhra(fixed, ALPHA)),
        "cluster_mhra": (
            lambda: ClusterMhra(ALPHA).place(problem()),
            lambda: greenfaas_loop.cluster_mhra(
                fixed, ALPHA, cluster_tasks(fixed, threshold_j(fixed))
            ),
        ),
    }
    rows: list[dict[str, object]] = []
    for name, (ours, peer) in strategies.items():
        loom_s, placement = timed(ours, repeats)
        row: dict[str, object] = {"tasks": tasks, "strategy": name, "loom_s": f"{loom_s:.5f}"}
        row |= {"loop_port_s": "-", "loop_port_over_loom": "-", "same_endpoints": "-"}
        if peer is not None:
            peer_s, theirs = timed(peer, max(1, repeats // 2))
            row["loop_port_s"] = f"{peer_s:.4f}"
            row["loop_port_over_loom"] = f"{peer_s / loom_s:.1f}"
            row["same_endpoints"] = bool(np.array_equal(theirs.endpoint, placement.endpoint))
        published = greenfaas.OVERHEAD_S.get(tasks)
        index = {"mhra": 0, "cluster_mhra": 1}.get(name)
        row |= {"authors_s": "-", "authors_over_loom": "-"}
        if published is not None and index is not None:
            row["authors_s"] = published[index]
            row["authors_over_loom"] = f"{published[index] / loom_s:.0f}"
        row["clusters"] = len(groups) if name == "cluster_mhra" else "-"
        rows.append(row)
        print(row, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="up to 256 tasks, 2 repeats")
    parser.add_argument("--repeats", type=int, default=5, help="timings per cell (median)")
    args = parser.parse_args()
    sizes = [s for s in SIZES if s <= 256] if args.quick else list(SIZES)
    repeats = 2 if args.quick else args.repeats
    endpoints = SimulatedEndpoints(SimulatedEndpointsConfig())
    ClusterMhra().place(Problem(endpoints.plan_sites, np.ones((4, 4)), np.ones((4, 4))))  # imports
    rows = [row for tasks in sizes for row in measure(endpoints, tasks, repeats)]
    title = f"scheduling overhead: predict + place, median of {repeats} (2 cores; alpha {ALPHA})"
    publish("placement_energy", {title: rows})


if __name__ == "__main__":
    main()
