"""Ideal schedules and summary metrics on hand-worked cases."""

from __future__ import annotations

import pytest

from components.runtime._metrics import ideal_makespan, task_metrics
from components.runtime.taskpath import TaskHandle


def _task(
    task_id: int,
    duration: float,
    parents: list[int] | None = None,
    dispatched: float = 0.0,
    done: float = 0.0,
) -> TaskHandle:
    handle = TaskHandle(task_id, "t", print, ())
    handle.start, handle.end = 100.0, 100.0 + duration
    handle.parents = parents or []
    handle.dispatched, handle.done = dispatched, done
    handle.success, handle.attempts = True, 1
    return handle


def test_bag_list_schedule() -> None:
    tasks = [_task(i, d) for i, d in enumerate([3, 1, 1, 1])]
    assert ideal_makespan(tasks, 1) == 6
    assert ideal_makespan(tasks, 2) == 3  # 3 | 1+1+1
    assert ideal_makespan(tasks, 8) == 3


def test_dependencies_delay_children() -> None:
    chain = [_task(0, 1), _task(1, 2, [0]), _task(2, 3, [1])]
    assert ideal_makespan(chain, 4) == 6
    diamond = [_task(0, 1), _task(1, 2, [0]), _task(2, 2, [0]), _task(3, 1, [1, 2])]
    assert ideal_makespan(diamond, 2) == 4
    assert ideal_makespan(diamond, 1) == 6


def test_summary_metrics() -> None:
    tasks = [_task(i, 0.1, dispatched=10.0, done=10.0 + 0.1 * (i + 1)) for i in range(4)]
    tasks[3].success = False
    tasks[3].attempts = 3
    m = task_metrics(tasks, workers=1)
    assert m["makespan_s"] == pytest.approx(0.4)
    assert m["tasks_per_s"] == pytest.approx(10.0)
    assert m["ideal_makespan_s"] == pytest.approx(0.4)
    assert m["overhead_per_task_ms"] == pytest.approx(0.0, abs=1e-9)
    assert m["tasks_failed"] == 1 and m["task_attempts"] == 6 and m["tasks_retried"] == 1
    assert m["task_latency_p50_ms"] == pytest.approx(250.0)
