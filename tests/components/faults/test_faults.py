"""The faults group: schedules, validation, and each executor-side kind on a small run.

Storage and broker kinds are tested with their areas' runs in test_fault_areas.py.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from components.executor.thread import ThreadExecutor
from components.faults._injector import pick
from components.faults.protocol import Fault
from components.runtime.taskpath import FailureSpec, TaskPath
from framework.compose import Composer
from framework.errors import ConfigError
from tests.components.faults.run_job import run_job


def _refusal(*overrides: str) -> str:
    with pytest.raises(ConfigError) as caught:
        Composer().compose(list(overrides))
    return "\n".join(caught.value.problems)


# -- the schedule and its validation ---------------------------------------------------------


def test_a_fault_no_component_of_the_run_takes_is_refused_naming_what_could() -> None:
    text = _refusal("faults=schedule", "faults.schedule=[{kind:broker_kill}]")
    assert "faults.schedule[0].kind=broker_kill" in text
    assert "events=embedded" in text and "executor=thread" in text
    text = _refusal("faults=schedule", "faults.schedule=[{kind:worker_kill}]")
    assert "executor=process or executor=dask" in text
    text = _refusal(
        "scenario=storage_benchmark",
        "faults=schedule",
        "faults.schedule=[{kind:task_failure,rate:0.1}]",
    )
    assert "task path" in text
    # An existing Dask cluster is not Loom's to kill.
    text = _refusal(
        "executor=dask",
        "executor.address=tcp://127.0.0.1:1",
        "faults=schedule",
        "faults.schedule=[{kind:worker_kill}]",
    )
    assert "worker_kill" in text


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ("{kind:container_down,rate:0.1}", "rate is for task_failure only"),
        ("{kind:task_failure}", "task_failure needs rate"),
        ("{kind:worker_kill,duration_s:3}", "instantaneous"),
        ("{kind:broker_pause,at_s:1,at_fraction:0.5}", "at_fraction cannot be combined"),
        ("{kind:broker_pause,times:3}", "times needs every_s"),
        ("{kind:link_partition,factor:3}", "factor is for"),
        ("{kind:disk_full}", "container_down"),
    ],
)
def test_a_setting_its_kind_does_not_read_is_refused(entry: str, fragment: str) -> None:
    text = _refusal("faults=schedule", f"faults.schedule=[{entry}]")
    assert fragment in text and "faults.schedule.0" in text


def test_targets_are_a_seeded_choice() -> None:
    names = [f"c{i}" for i in range(7)]
    assert pick("all", names, random.Random(1)) == names
    assert len(pick("minority", names, random.Random(1))) == 3
    assert pick("one", names, random.Random("0:0:0")) == pick("one", names, random.Random("0:0:0"))
    chosen = {pick("one", names, random.Random(f"0:0:{n}"))[0] for n in range(20)}
    assert len(chosen) > 1  # occurrences differ, each repeatable
    assert pick(["c2", "c5"], names, random.Random(0)) == ["c2", "c5"]


def test_a_failure_window_only_fails_attempts_inside_it() -> None:
    import time

    now = time.time()
    assert not FailureSpec(1.0, "exception", 0, now + 60, now + 120).fails(1, 1)
    assert FailureSpec(1.0, "exception", 0, now - 1, now + 60).fails(1, 1)
    assert Fault(kind="task_failure", rate=0.5).first_s == 0.0


# -- the task path --------------------------------------------------------------------------


def test_a_dependency_failure_names_its_root_cause() -> None:
    def boom() -> int:
        raise OSError("disk on fire")

    def plus_one(x: int) -> int:
        return x + 1

    with ThreadExecutor(2) as pool, TaskPath(pool) as path:
        first = path.submit(boom)
        second = path.submit(plus_one, first)
        third = path.submit(plus_one, second)
        path.wait()
    assert third.error is not None
    assert "parent task 1 failed" in third.error.message
    assert "OSError: disk on fire" in third.error.message  # the root, two levels up


def test_task_failure_is_a_fault_the_task_path_takes(tmp_path: Path) -> None:
    ran = run_job(
        tmp_path,
        "scenario.structure=diamond",
        "scenario.tasks=40",
        "scenario.task_retries=8",
        "faults=schedule",
        "faults.schedule=[{kind:task_failure,rate:0.3}]",
    )
    assert ran.result.status == "finished", ran.result.error
    metrics = ran.metrics
    assert metrics["faults_injected"] == 1 and metrics["faults_task_failure"] == 1
    assert metrics["tasks_retried"] > 0 and metrics["tasks_failed"] == 0
    assert metrics["result_verified"] == 1
    causes = [c for row in ran.rows("tasks") for c in row["retry_causes"]]
    assert causes and all(c.startswith("InjectedFailure") for c in causes)
    assert ran.rows("faults")[0]["kind"] == "task_failure"


def test_a_trial_that_fails_under_faults_records_them_as_its_cause(tmp_path: Path) -> None:
    ran = run_job(
        tmp_path,
        "scenario=federated",
        "fl.rounds=1",
        "faults=schedule",
        "faults.schedule=[{kind:task_failure,rate:1.0}]",
    )
    assert ran.result.status == "failed"
    text = ran.error()
    assert "faults injected before this failure" in text and "task_failure" in text
    assert "InjectedFailure" in text  # the root cause, through the dependency chain


# -- executor worker faults (the regressions of the issue) -----------------------------------


@pytest.mark.slow
def test_a_killed_process_pool_worker_is_replaced_and_its_tasks_rerun(tmp_path: Path) -> None:
    ran = run_job(
        tmp_path,
        "executor=process",
        "scenario.tasks=6",
        "scenario.task_sleep_s=0.8",
        "faults=schedule",
        "faults.schedule=[{kind:worker_kill,at_s:1.0}]",
    )
    assert ran.result.status == "finished", ran.result.error
    metrics = ran.metrics
    assert metrics["faults_worker_kill"] == 1 and metrics["tasks_failed"] == 0
    assert metrics["task_attempts_lost_with_worker"] >= 1 and metrics["tasks_retried"] >= 1
    causes = [c for row in ran.rows("tasks") for c in row["retry_causes"]]
    killed = ran.rows("faults")[0]["detail"].split()[-1]
    assert any(f"pid {killed} died (SIGKILL)" in c and "worker_kill" in c for c in causes)


@pytest.mark.slow
def test_fl_survives_a_killed_process_pool_worker_with_the_same_model(tmp_path: Path) -> None:
    common = ("scenario=federated", "executor=process", "fl.rounds=3")
    clean = run_job(tmp_path / "clean", *common)
    ran = run_job(
        tmp_path / "faulty",
        *common,
        "faults=schedule",
        "faults.schedule=[{kind:worker_kill,targets:all,at_fraction:0.3}]",
    )
    assert ran.result.status == "finished", ran.result.error
    assert ran.metrics["faults_worker_kill"] == 1 and ran.metrics["rounds_run"] == 3
    assert ran.metrics["tasks_failed"] == 0
    assert ran.metrics["final_accuracy"] == clean.metrics["final_accuracy"]  # seeded: same model


@pytest.mark.slow
def test_a_killed_dask_worker_is_a_counted_retry_and_leaks_nothing(tmp_path: Path) -> None:
    ran = run_job(
        tmp_path,
        "executor=dask",
        "dataflow=proxystore",
        "dataflow.threshold_bytes=100",
        "scenario.tasks=8",
        "scenario.task_sleep_s=0.6",
        "faults=schedule",
        "faults.schedule=[{kind:worker_kill,at_s:1.5}]",
    )
    assert ran.result.status == "finished", ran.result.error
    metrics = ran.metrics
    assert metrics["tasks_retried"] >= 1 and metrics["task_attempts_lost_with_worker"] >= 1
    assert metrics["store_keys_leaked"] == 0 and metrics["result_verified"] == 1
    causes = [c for row in ran.rows("tasks") for c in row["retry_causes"]]
    assert any(c.startswith("WorkerLost: Dask worker tcp://") for c in causes)


@pytest.mark.slow
def test_a_paused_worker_resumes_and_its_tasks_finish(tmp_path: Path) -> None:
    ran = run_job(
        tmp_path,
        "executor=process",
        "scenario.tasks=6",
        "scenario.task_sleep_s=0.3",
        "faults=schedule",
        "faults.schedule=[{kind:process_pause,targets:all,at_s:0.5,duration_s:1.5}]",
    )
    assert ran.result.status == "finished", ran.result.error
    metrics = ran.metrics
    assert metrics["faults_process_pause"] == 1 and metrics["tasks_failed"] == 0
    row = ran.rows("faults")[0]
    assert row["detail"].startswith("SIGSTOP") and row["healed_at_s"] >= 1.9
    assert metrics["makespan_s"] >= 1.5  # nothing ran while every worker was stopped
