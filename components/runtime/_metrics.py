"""Metrics of a set of task records: makespan, throughput, latency, scheduling overhead."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from components.runtime.taskpath import TaskHandle


def ideal_makespan(tasks: Sequence[TaskHandle], workers: int) -> float:
    """Makespan of a zero-overhead list schedule of the measured run times on ``workers``.

    Tasks are taken in submission (topological) order; each starts when a worker is free and
    its parents have ended.
    """
    free = [0.0] * workers
    finish: dict[int, float] = {}
    for task in tasks:
        duration = max(0.0, task.end - task.start) if task.start else 0.0
        ready = max((finish[p] for p in task.parents), default=0.0)
        start = max(heapq.heappop(free), ready)
        finish[task.task_id] = start + duration
        heapq.heappush(free, start + duration)
    return max(finish.values(), default=0.0)


def task_metrics(tasks: Sequence[TaskHandle], workers: int) -> dict[str, float]:
    """Summary metrics of one trial's tasks."""
    if not tasks:
        return {}
    dispatched = np.array([t.dispatched for t in tasks if t.dispatched])
    done = np.array([t.done for t in tasks])
    makespan = float(done.max() - (dispatched.min() if dispatched.size else done.min()))
    latency_ms = np.array([(t.done - t.dispatched) * 1e3 for t in tasks if t.dispatched])
    p50, p95, p99 = np.percentile(latency_ms, [50, 95, 99]) if latency_ms.size else (0.0, 0.0, 0.0)
    ideal = ideal_makespan(tasks, workers)
    attempts = sum(t.attempts for t in tasks)
    return {
        "tasks": float(len(tasks)),
        "makespan_s": makespan,
        "tasks_per_s": len(tasks) / makespan if makespan > 0 else 0.0,
        "task_latency_p50_ms": float(p50),
        "task_latency_p95_ms": float(p95),
        "task_latency_p99_ms": float(p99),
        "ideal_makespan_s": ideal,
        "overhead_per_task_ms": (makespan - ideal) / len(tasks) * 1e3,
        "tasks_failed": float(sum(not t.success for t in tasks)),
        "task_attempts": float(attempts),
        "tasks_retried": float(sum(t.attempts > 1 for t in tasks)),
        # Retries by cause: attempts lost with their worker, and attempts that failed.
        "task_attempts_lost_with_worker": float(sum(t.lost for t in tasks)),
        "bytes_in": float(sum(t.bytes_in for t in tasks)),
        "bytes_out": float(sum(t.bytes_out for t in tasks)),
        "task_cpu_s": float(sum(t.cpu_s for t in tasks)),
        "workers": float(workers),
    }


# Per-task movement record fields (a data mover's hook writes them), summed per trial.
MOVEMENT_SUMS = (
    "bytes_in",
    "bytes_out",
    "get_ms",
    "deserialize_ms",
    "serialize_ms",
    "put_ms",
    "cache_hits",
    "proxied_in",
    "proxied_out",
)


def movement_metrics(
    records: Iterable[Mapping[str, Any] | None], stored: tuple[int, int]
) -> dict[str, float]:
    """Trial metrics from the tasks' movement records, and the leak check.

    Args:
        records: Each task's movement record (None where nothing moved by reference).
        stored: Keys and bytes the store holds after the task path closed; the metrics
            ``store_keys_leaked`` and ``store_bytes_leaked`` must be 0.

    """
    totals = dict.fromkeys(MOVEMENT_SUMS, 0.0)
    for record in records:
        if record:
            for name in MOVEMENT_SUMS:
                totals[name] += float(record.get(name, 0))
    return {
        "data_bytes_by_reference_in": totals["bytes_in"],
        "data_bytes_by_reference_out": totals["bytes_out"],
        "data_get_ms": totals["get_ms"] + totals["deserialize_ms"],
        "data_put_ms": totals["put_ms"] + totals["serialize_ms"],
        "data_cache_hits": totals["cache_hits"],
        "data_proxied_inputs": totals["proxied_in"],
        "data_proxied_results": totals["proxied_out"],
        "store_keys_leaked": float(stored[0]),
        "store_bytes_leaked": float(stored[1]),
    }
