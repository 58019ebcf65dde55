"""The task path on a process pool: bursts leave in batches, a few tasks leave one by one."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from components.executor.process import ProcessExecutorConfig
from components.runtime.protocols import LoomExecutor
from components.runtime.taskpath import MAX_BATCH, FailureSpec, TaskPath


class Counting:
    """An executor that counts the submissions it passes on."""

    def __init__(self, inner: LoomExecutor) -> None:
        self.inner = inner
        self.workers = inner.workers
        self.submissions = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submissions += 1
        return self.inner.submit(fn, *args, **kwargs)


def _square(x: int) -> int:
    return x * x


def _nap(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def test_a_burst_of_small_tasks_leaves_in_batches_each_task_keeping_its_record() -> None:
    with ProcessExecutorConfig(max_workers=2).build() as pool:
        counting = Counting(pool)
        with TaskPath(counting) as path:  # type: ignore[arg-type]
            handles = [path.submit(_square, i) for i in range(2000)]
            path.wait()
    assert [h.value for h in handles] == [i * i for i in range(2000)]
    assert 2000 / MAX_BATCH <= counting.submissions < 2000 / 4
    records = [h.record() for h in handles]
    assert all(r["success"] and r["attempts"] == 1 and r["worker"] for r in records)
    assert all(r["start_time"] <= r["end_time"] <= r["done_time"] for r in records)
    assert len({r["worker"] for r in records}) == 2  # both workers shared the burst


def test_a_few_tasks_leave_one_by_one_and_run_side_by_side() -> None:
    with ProcessExecutorConfig(max_workers=2).build() as pool:
        counting = Counting(pool)
        with TaskPath(counting) as path:  # type: ignore[arg-type]
            path.submit(_nap, 0.0)
            path.wait()  # the workers are up
            naps = [path.submit(_nap, 0.5) for _ in range(2)]
            path.wait()
    assert counting.submissions == 3
    assert naps[0].value != naps[1].value  # one worker each, at the same time
    assert naps[1].start < naps[0].end


def test_an_injected_failure_in_a_batch_is_its_own_task_s_and_is_retried_alone() -> None:
    failure = FailureSpec(rate=0.2, seed=3, kind="exception")
    with (
        ProcessExecutorConfig(max_workers=2).build() as pool,
        TaskPath(pool, max_attempts=5, failure=failure) as path,
    ):
        handles = [path.submit(_square, i) for i in range(500)]
        path.wait()
    assert all(h.success for h in handles)
    retried = [h for h in handles if h.attempts > 1]
    assert 50 < len(retried) < 200  # about a fifth failed once, each alone
    assert all(len(h.retry_causes) == h.attempts - 1 for h in handles)
