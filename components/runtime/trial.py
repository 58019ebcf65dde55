"""One trial of a task scenario: its task path with the run's data mover, then its records.

Every task scenario (synthetic, the TaPS applications) runs its tasks through a
:class:`TaskTrial`, which opens the path with the ``dataflow`` group's mover where the run has
one, and afterwards logs the task metrics, the data-movement totals with the leak check, each
task's energy and the per-task records.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from components.base import RunContext
from components.runtime._metrics import movement_metrics, task_metrics
from components.runtime._plots import plot_tasks
from components.runtime.protocols import DataMovers, LoomExecutor
from components.runtime.taskpath import FailureSpec, TaskPath

log = logging.getLogger(__name__)

# What a scenario whose tasks run through a TaskTrial takes from the faults group.
TASK_PATH_FAULTS = frozenset({"task_failure"})


class TaskTrial:
    """The task path of one trial and what is recorded of it.

    Args:
        ctx: The trial's context (its ``executor`` and, if any, ``dataflow`` components).
        max_attempts: Attempts per task.
        failure: Failure injection (default: the run's ``task_failure`` fault, if any).

    """

    def __init__(
        self,
        ctx: RunContext,
        *,
        max_attempts: int = 1,
        failure: FailureSpec | None = None,
        by_reference: Sequence[str] = (),
    ) -> None:
        self.ctx = ctx
        self.executor = ctx.component("executor", LoomExecutor)  # type: ignore[type-abstract]
        flow = ctx.components.get("dataflow")
        self.movers = flow if isinstance(flow, DataMovers) else None
        mover = None if self.movers is None else self.movers.mover(by_reference)
        self._mover = mover
        if failure is None:  # the faults group's share of the task path
            faults = ctx.components.get("faults")
            failure = getattr(faults, "task_failure", lambda: None)()
        self.path = TaskPath(self.executor, max_attempts=max_attempts, failure=failure, mover=mover)

    def __enter__(self) -> TaskPath:
        return self.path

    def __exit__(self, *exc_info: object) -> None:
        self.path.close()  # the mover frees what it holds: read results before this

    def record(self, extra: dict[str, float], plot_title: str | None = None) -> dict[str, float]:
        """Log the trial's metrics (task, movement, energy and ``extra``) and task records."""
        ctx, tasks = self.ctx, self.path.tasks
        metrics = task_metrics(tasks, self.executor.workers)
        metrics.update(extra)
        if self.movers is not None:
            metrics.update(movement_metrics((t.moved for t in tasks), self.movers.stored()))
            metrics.update(self.movers.store_metrics())
        if self._mover is not None:
            metrics["data_orphans_evicted"] = float(self._mover.orphans_evicted)
            proxied = metrics["data_proxied_inputs"] + metrics["data_proxied_results"]
            metrics["data_nothing_proxied"] = float(proxied == 0)
            if proxied == 0:  # a by-reference flow that moved nothing by reference is a no-op
                largest = getattr(getattr(self._mover, "rule", None), "largest_bytes", 0)
                log.warning(
                    "dataflow=%s proxied nothing in trial %d: no task argument or result "
                    "reached its threshold (largest argument seen: %s bytes); lower "
                    "dataflow.threshold_bytes to move them by reference",
                    self.movers.name if self.movers else "?",
                    ctx.trial,
                    f"{largest:,}",
                )
        records: list[dict[str, Any]] = [t.record() for t in tasks]
        if ctx.watts_per_thread is not None:  # each task's energy from its own CPU time
            for row in records:
                row["energy_j"] = ctx.task_energy_j(row["cpu_s"])
            metrics["task_energy_j"] = sum(r["energy_j"] for r in records)
        ctx.log_metrics(metrics)
        ctx.write_records("tasks", records)
        if plot_title is not None:
            plot_tasks(tasks, ctx.run_dir, plot_title)
        return metrics
