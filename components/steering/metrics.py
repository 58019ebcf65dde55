"""What a steered campaign measured, from every task's Colmena timestamps.

Definitions follow Colmena's notebooks (``1_plot-run-data``, ``task-limits/assess-utilization``):

- utilisation over time: tasks computing / slots; on average, busy slot-time over slots × the
  campaign's span (first task created to last compute ended);
- reaction time: result received by the thinker − compute ended;
- dispatch time: compute started − created (the request's trip to a worker);
- decision time: a task submitter's time from a free slot to the request sent;
- search quality: best value against evaluations; evaluations and seconds until the best is
  within ε of the optimum (0 for Ackley).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

STAMPS = (
    "created",
    "input_received",
    "compute_started",
    "compute_ended",
    "result_sent",
    "result_received",
)


def _percentiles(values: Sequence[float], prefix: str) -> dict[str, float]:
    if not values:
        return {}
    ms = np.asarray(values) * 1000
    return {
        f"{prefix}_p50_ms": float(np.percentile(ms, 50)),
        f"{prefix}_p99_ms": float(np.percentile(ms, 99)),
    }


def utilisation_series(
    tasks: Sequence[Mapping[str, Any]], slots: int, points: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """Times (s from the first creation) and tasks computing / slots at each."""
    start = min(t["created"] for t in tasks)
    end = max(t["compute_ended"] for t in tasks)
    grid = np.linspace(start, end, points)
    begins = np.array([t["compute_started"] for t in tasks])
    ends = np.array([t["compute_ended"] for t in tasks])
    active = ((begins[None, :] <= grid[:, None]) & (grid[:, None] < ends[None, :])).sum(axis=1)
    return grid - start, active / slots


def campaign_metrics(
    tasks: Sequence[Mapping[str, Any]],
    slots: int,
    decisions_s: Sequence[float],
    epsilon: float,
    optimum: float = 0.0,
) -> dict[str, float]:
    """Utilisation, latencies and search quality of one campaign.

    Args:
        tasks: One record per evaluation, in the order results arrived: its timestamps
            (:data:`STAMPS`, Unix seconds), ``value`` (None when it failed) and ``success``.
        slots: Tasks that could run at once.
        decisions_s: Each submitter decision's duration.
        epsilon: The search counts as solved once best − optimum ≤ epsilon.
        optimum: The objective's minimum.

    """
    start = min(t["created"] for t in tasks)
    end = max(t["compute_ended"] for t in tasks)
    busy = sum(t["compute_ended"] - t["compute_started"] for t in tasks)
    span = end - start
    values = [t["value"] if t["success"] else math.inf for t in tasks]
    best = np.minimum.accumulate(values)
    solved = np.flatnonzero(best - optimum <= epsilon)
    out = {
        "evaluations": float(len(tasks)),
        "failed": float(sum(not t["success"] for t in tasks)),
        "retried": float(sum(t.get("retries", 0) > 0 for t in tasks)),
        "best_value": float(best[-1]),
        "makespan_s": span,
        "utilisation": busy / (slots * span) if span > 0 else 0.0,
        "evaluations_to_epsilon": float(solved[0] + 1) if len(solved) else math.nan,
        "time_to_epsilon_s": tasks[int(solved[0])]["result_received"] - start
        if len(solved)
        else math.nan,
        "solved": float(len(solved) > 0),
    }
    out |= _percentiles([t["result_received"] - t["compute_ended"] for t in tasks], "reaction")
    out |= _percentiles([t["compute_started"] - t["created"] for t in tasks], "dispatch")
    out |= _percentiles(list(decisions_s), "decision")
    return out
