"""Scoring a finished schedule: what the tasks really cost, on the endpoints' real terms.

This is the simulation's ground truth, separate from the planning model a placer uses: it
runs each endpoint's tasks, in dispatch order, on the earliest free slot of its blocks, and
charges energy as the authors measured it (node energy while a node is up):

- blocks an endpoint keeps up (``min_blocks``) are up from t = 0 to the end of the run, so an
  always-on endpoint pays static power for the whole makespan, busy or not;
- a cold endpoint requests ``clamp(ceil(tasks × parallelism / slots), 1, max_blocks)`` blocks
  at t = 0 (one batch arrives: Parsl's scaling rule); each is ready after ``cold_start_s`` and
  stays up until its endpoint's last task ends plus ``shutdown_s`` (the idle tail);
- energy = the tasks' dynamic energy + static power × the time blocks are up.

Only the endpoints a strategy may use are charged (a single-endpoint run pays for that one).
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from components.endpoints.protocol import Executed, FloatArray, IntArray, Site, TaskPlacement


def blocks_needed(site: Site, tasks: int) -> int:
    """Blocks an endpoint runs for a batch of ``tasks`` (Parsl's rule, one batch at t = 0)."""
    if tasks == 0:
        return site.min_blocks
    wanted = math.ceil(tasks * site.parallelism / site.slots)
    return max(site.min_blocks, min(site.max_blocks, max(1, wanted)))


def execute(
    placement: TaskPlacement,
    sites: tuple[Site, ...],
    runtime_s: FloatArray,
    energy_j: FloatArray,
    used: tuple[int, ...] | None = None,
) -> Executed:
    """Run a placement against the true costs (tasks × endpoints arrays).

    Args:
        placement: Where each task goes and the dispatch order.
        sites: The endpoints.
        runtime_s: True runtime of each task on each endpoint.
        energy_j: True dynamic energy of each task on each endpoint.
        used: Endpoints the strategy runs on (charged even when idle); default all.

    """
    used = tuple(range(len(sites))) if used is None else used
    endpoint = np.asarray(placement.endpoint, dtype=np.int64)
    tasks_at = np.bincount(endpoint, minlength=len(sites))
    stray = [sites[e].name for e in np.flatnonzero(tasks_at) if e not in used]
    if stray:
        raise ValueError(f"tasks placed on {stray}, outside the strategy's endpoints")
    start = np.zeros(len(endpoint))
    finish: dict[int, float] = {}
    blocks: dict[int, int] = {}
    for e in used:
        site = sites[e]
        blocks[e] = blocks_needed(site, int(tasks_at[e]))
        warm = site.min_blocks * site.slots
        ready = [0.0] * warm + [site.cold_start_s] * ((blocks[e] - site.min_blocks) * site.slots)
        heapq.heapify(ready)
        finish[e] = 0.0
        mine: IntArray = placement.order[endpoint[placement.order] == e]
        for task in mine.tolist():
            begins = ready[0]
            ends = begins + float(runtime_s[task, e])
            heapq.heapreplace(ready, ends)
            start[task] = begins
            finish[e] = max(finish[e], ends)
    makespan = max(finish.values(), default=0.0)
    static = 0.0
    for e in used:
        site = sites[e]
        cold_blocks = blocks[e] - site.min_blocks
        up_cold = finish[e] + site.shutdown_s - site.cold_start_s if tasks_at[e] else 0.0
        static += site.static_w * (site.min_blocks * makespan + cold_blocks * max(0.0, up_cold))
    rows = np.arange(len(endpoint))
    runtime, energy = runtime_s[rows, endpoint], energy_j[rows, endpoint]
    counts = {sites[e].name: int(tasks_at[e]) for e in used}
    return Executed(makespan, float(energy.sum()), static, counts, runtime, energy, start)
