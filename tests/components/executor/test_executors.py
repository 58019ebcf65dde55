"""Every executor runs every structure with a correct result; failure injection and retries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.base import RunContext
from components.executor.dask import DaskExecutorConfig
from components.executor.process import ProcessExecutorConfig
from components.executor.protocol import LoomExecutor
from components.executor.thread import ThreadExecutorConfig
from components.faults import Fault, FaultSchedule
from components.runtime.taskpath import FailureSpec, TaskPath
from components.scenarios.synthetic import SyntheticScenarioConfig
from components.scenarios.taps_workflows import build_workflow, synthetic_task

STRUCTURES = ["bag", "diamond", "reduce", "sequential"]
EXPECTED_TASKS = {"bag": 12, "diamond": 14, "reduce": 13, "sequential": 12}


@pytest.fixture(scope="module", params=["thread", "process", "dask"])
def executor(request: pytest.FixtureRequest) -> Iterator[LoomExecutor]:
    config = {
        "thread": ThreadExecutorConfig(max_workers=3),
        "process": ProcessExecutorConfig(max_workers=2),
        "dask": DaskExecutorConfig(n_workers=2, threads_per_worker=1, processes=True),
    }[request.param]
    with config.build() as opened:
        yield opened


def _run(
    executor: LoomExecutor,
    tmp_path: Path,
    failures: dict[str, Any] | None = None,
    **fields: object,
) -> dict[str, float]:
    """The synthetic scenario on ``executor``; ``failures``: a task_failure fault's settings."""
    schedule = FaultSchedule([Fault(kind="task_failure", **failures)] if failures else [])
    with schedule.during(7, {"executor": executor}) as faults:
        ctx = RunContext(
            {"executor": executor, "faults": faults}, seed=7, trial=0, run_dir=tmp_path
        )
        SyntheticScenarioConfig.model_validate(
            {"kind": "synthetic", "plots": False, **fields}
        ).build().run(ctx)
    return ctx.metrics


@pytest.mark.slow
@pytest.mark.parametrize("structure", STRUCTURES)
def test_every_executor_runs_every_structure_correctly(
    executor: LoomExecutor, structure: str, tmp_path: Path
) -> None:
    metrics = _run(
        executor,
        tmp_path,
        structure=structure,
        tasks=12,
        payload_bytes=256,
        task_sleep_s=0.001,
        warmup_tasks=2,
    )
    assert metrics["result_verified"] == 1.0
    assert metrics["tasks"] == EXPECTED_TASKS[structure]
    assert metrics["tasks_failed"] == 0
    assert metrics["bytes_out"] == 256 * EXPECTED_TASKS[structure]
    assert metrics["makespan_s"] >= metrics["ideal_makespan_s"] * 0.5
    assert (tmp_path / "tasks.jsonl").read_text().count("\n") == EXPECTED_TASKS[structure]


@pytest.mark.slow
def test_retries_recover_injected_failures(executor: LoomExecutor, tmp_path: Path) -> None:
    metrics = _run(
        executor,
        tmp_path,
        structure="diamond",
        tasks=30,
        task_retries=6,
        failures={"rate": 0.3, "raises": "zero_division"},
    )
    assert metrics["tasks_failed"] == 0
    assert metrics["result_verified"] == 1.0
    assert metrics["task_attempts"] > metrics["tasks"]  # failures happened and were retried


def test_failures_without_retries_are_counted_and_propagate(tmp_path: Path) -> None:
    with ThreadExecutorConfig(max_workers=2).build() as executor:
        metrics = _run(executor, tmp_path, structure="sequential", tasks=50, failures={"rate": 0.2})
        again = _run(executor, tmp_path, structure="sequential", tasks=50, failures={"rate": 0.2})
    assert metrics["result_verified"] == 0.0
    assert metrics["tasks_failed"] > 0
    assert metrics == pytest.approx(again, abs=1e9)  # same keys
    assert metrics["tasks_failed"] == again["tasks_failed"]  # decided by the seed, not timing
    records = (tmp_path / "tasks.jsonl").read_text()
    assert "DependencyFailed" in records and "InjectedFailure" in records


def test_failure_decision_is_per_attempt_and_seeded() -> None:
    spec = FailureSpec(rate=0.5, kind="exception", seed=3)
    first = [spec.fails(t, 1) for t in range(2000)]
    assert first == [spec.fails(t, 1) for t in range(2000)]
    assert 900 < sum(first) < 1100
    second = [spec.fails(t, 2) for t in range(2000)]
    assert first != second  # a retry draws afresh, so it can succeed


@pytest.mark.parametrize(
    "kind,exc",
    [
        ("exception", "InjectedFailure"),
        ("zero_division", "ZeroDivisionError"),
        ("import_error", "ModuleNotFoundError"),
    ],
)
def test_failure_kinds(kind: str, exc: str) -> None:
    with (
        ThreadExecutorConfig(max_workers=1).build() as executor,
        TaskPath(executor, failure=FailureSpec(1.0, kind, 0)) as path,
    ):  # type: ignore[arg-type]
        handle = path.submit(synthetic_task, 0.0, 8, 0, b"x")
        path.wait()
    assert handle.error is not None and handle.error.type == exc
    assert "raise_failure" in handle.error.traceback  # the evidence, not only the type


def test_a_task_error_from_a_worker_process_keeps_its_traceback() -> None:
    with (
        ProcessExecutorConfig(max_workers=1).build() as executor,
        TaskPath(executor, failure=FailureSpec(1.0, "zero_division", 0)) as path,
    ):  # type: ignore[arg-type]
        failed = path.submit(synthetic_task, 0.0, 8, 0, b"x")
        child = path.submit(synthetic_task, 0.0, 8, 0, failed)
        path.wait()
    assert failed.error is not None and failed.error.type == "ZeroDivisionError"
    assert "division by zero" in failed.error.message
    assert "raise_failure" in failed.error.traceback
    record = failed.record()["exception"]
    assert record == failed.error.to_dict() and record["traceback"]
    assert child.error is not None and child.error.type == "DependencyFailed"
    assert str(child.error) == (
        f"DependencyFailed: parent task {failed.task_id} failed: "
        "ZeroDivisionError: division by zero"
    )


def test_workflow_shapes() -> None:
    diamond = build_workflow("diamond", 4, 0.0, 0.0, 16, seed=1)
    assert [t.parents for t in diamond.tasks] == [(), (0,), (0,), (0,), (0,), (1, 2, 3, 4)]
    assert diamond.sinks == (5,)
    jittered = build_workflow("bag", 100, 0.01, 0.005, 0, seed=1)
    sleeps = [t.sleep_s for t in jittered.tasks]
    assert min(sleeps) >= 0 and len(set(sleeps)) > 90
    assert sleeps == [t.sleep_s for t in build_workflow("bag", 100, 0.01, 0.005, 0, 1).tasks]


def test_unreachable_dask_scheduler_fails_fast_and_clearly() -> None:
    config = DaskExecutorConfig(address="tcp://127.0.0.1:9", connect_timeout_s=2)
    with pytest.raises(ConnectionError, match=r"tcp://127\.0\.0\.1:9"):
        config.build()


def test_thread_path_runs_at_most_workers_tasks_at_once_and_all_of_them() -> None:
    import threading
    import time

    running, peak, lock = [0], [0], threading.Lock()

    def tracked(i: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.0005)
        with lock:
            running[0] -= 1
        return i

    with ThreadExecutorConfig(max_workers=3).build() as executor, TaskPath(executor) as path:
        handles = [path.submit(tracked, i) for i in range(300)]
        total = path.submit(lambda *xs: sum(xs), *handles)
        assert path.wait(timeout=60)
    assert peak[0] == 3  # the pool's width is kept: no more, and it was used
    assert total.value == sum(range(300))
    assert len({h.worker for h in handles}) == 3


def test_tasks_on_a_shut_down_executor_fail_instead_of_hanging() -> None:
    for config in (ThreadExecutorConfig(max_workers=2), ProcessExecutorConfig(max_workers=1)):
        executor = config.build()
        executor.shutdown()
        with TaskPath(executor) as path:
            handle = path.submit(synthetic_task, 0.0, 8, 0, b"x")
            assert path.wait(timeout=10)
        assert handle.error is not None and "shutdown" in handle.error.message
