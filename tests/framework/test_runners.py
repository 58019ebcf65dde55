"""A sweep's jobs on every runner: one MLflow sweep, jobs that overlap, failures, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest

from components.loopback import free_port
from framework.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

# Two jobs that each wait until the other runs too: they finish only if they overlap.
MEETING_PAIR = [
    "scenario=flaky",
    "scenario.fail_first=0",
    "scenario.sleep_s=0.0,0.01",
    "energy=none",
]
# Two jobs of a second each (for runs that must not overlap).
SLOW_PAIR = ["scenario=flaky", "scenario.fail_first=0", "scenario.sleep_s=1.0,1.01", "energy=none"]
RUNNERS = {
    "threads": ["runner=threads"],
    "processes": ["runner=processes"],
    "dask": ["runner=dask"],
}


def _uri() -> str:
    return f"sqlite:///{Path('results/mlflow.db').resolve()}"


def _runs(experiment: str = "no-recipe/flaky") -> pd.DataFrame:
    mlflow.set_tracking_uri(_uri())
    return mlflow.search_runs(experiment_names=[experiment])


def _sweep_rows() -> list[dict[str, object]]:
    latest = max(Path("results", "no-recipe").glob("*/*/sweep.json"), key=os.path.getmtime)
    rows: list[dict[str, object]] = json.loads(latest.read_text())
    return rows


@pytest.mark.parametrize("runner", sorted(RUNNERS))
def test_every_runner_runs_a_sweep_side_by_side_into_one_mlflow_sweep(
    workdir: Path, plugin: str, runner: str
) -> None:
    assert (
        main(["run", "-m", *MEETING_PAIR, f"scenario.meet={workdir / 'meet'}", *RUNNERS[runner]])
        == 0
    )
    runs = _runs()
    sweeps = runs[runs["tags.loom.run_type"] == "sweep"]
    jobs = runs[runs["tags.loom.run_type"] == "job"]
    assert len(sweeps) == 1 and len(jobs) == 2
    assert set(jobs["tags.mlflow.parentRunId"]) == set(sweeps["run_id"])
    assert set(jobs["status"]) == {"FINISHED"} and jobs["metrics.attempts_seen"].notna().all()
    trials = runs[runs["tags.loom.run_type"] == "trial"]
    assert set(trials["tags.mlflow.parentRunId"]) == set(jobs["run_id"])
    # Side by side: each job started before the other ended.
    assert jobs["start_time"].max() < jobs["end_time"].min()

    # Resume skips both finished jobs, under the same runner.
    assert (
        main(
            [
                "run",
                "-m",
                *MEETING_PAIR,
                f"scenario.meet={workdir / 'meet'}",
                *RUNNERS[runner],
                "resume=true",
            ]
        )
        == 0
    )
    # Nothing was left: no second sweep folder, no new MLflow run.
    assert len(list(Path("results", "no-recipe").glob("*/*/sweep.json"))) == 1
    assert len(_runs()) == len(runs)


@pytest.mark.parametrize("runner", ["dask", "processes"])
def test_a_failing_and_a_crashing_job_fail_alone(
    workdir: Path, plugin: str, capsys: pytest.CaptureFixture[str], runner: str
) -> None:
    status = main(
        [
            "run",
            "-m",
            "scenario=flaky",
            "scenario.fail_first=0,5",
            "scenario.crash=false,true",
            "energy=none",
            f"runner={runner}",
        ]
    )
    assert status == 1  # some jobs failed
    rows = {" ".join(r["overrides"]).lower(): r for r in _sweep_rows()}  # type: ignore[arg-type]

    def row(fail_first: int, crash: bool) -> dict[str, Any]:
        wanted = (f"fail_first={fail_first}", f"crash={str(crash).lower()}")
        return next(r for key, r in rows.items() if all(w in key for w in wanted))

    fine, failing, crashed = row(0, False), row(5, False), row(0, True)
    assert fine["status"] == "finished"
    assert failing["status"] == "failed"
    assert failing["error"]["type"] == "RuntimeError"  # type: ignore[index]
    assert "Traceback" in failing["error"]["traceback"]  # type: ignore[index]
    assert crashed["status"] == "failed" and crashed["error"]["type"]  # type: ignore[index]
    out = capsys.readouterr().out
    assert "RuntimeError: flaky attempt" in out  # the count is per worker process


@pytest.fixture
def dask_cluster(workdir: Path, plugin: str) -> Iterator[str]:
    """A scheduler and two workers, each a process of its own, as a cluster is run."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    scheduler = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dashboard-address",
            ":0",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = [
        sys.executable,
        "-m",
        "distributed.cli.dask_worker",
        address,
        "--nthreads",
        "1",
        "--nworkers",
        "1",
        "--no-dashboard",
    ]
    workers = [
        subprocess.Popen(worker, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(2)
    ]
    try:
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for proc in [*workers, scheduler]:
            proc.terminate()
        for proc in [*workers, scheduler]:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_a_sweep_on_an_existing_dask_cluster(workdir: Path, dask_cluster: str) -> None:
    meet = f"scenario.meet={workdir / 'meet'}"
    assert (
        main(["run", "-m", *MEETING_PAIR, meet, "runner=dask", f"runner.address={dask_cluster}"])
        == 0
    )
    jobs = _runs().query("`tags.loom.run_type` == 'job'")
    assert set(jobs["status"]) == {"FINISHED"} and len(jobs) == 2
    assert jobs["start_time"].max() < jobs["end_time"].min()


def test_a_remote_cluster_with_the_local_sqlite_store_is_refused(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["run", "runner=dask", "runner.address=tcp://10.1.2.3:8786"])
    assert status == 2
    err = capsys.readouterr().err
    assert "runner.address=tcp://10.1.2.3:8786" in err and "tracking=mlflow_server" in err
    assert not Path("results").exists()  # nothing written


def test_a_cluster_that_does_not_answer_is_named_and_the_sweep_run_ends_failed(
    workdir: Path, plugin: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import dask

    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        status = main(["run", "-m", *SLOW_PAIR, "runner=dask", f"runner.address={address}"])
    assert status == 1
    err = capsys.readouterr().err
    assert f"runner.address={address}: no Dask scheduler answered" in err
    assert "Traceback" not in err
    runs = _runs()
    assert list(runs["tags.loom.run_type"]) == ["sweep"] and list(runs["status"]) == ["FAILED"]


def test_max_jobs_one_runs_the_jobs_one_after_the_other(workdir: Path, plugin: str) -> None:
    assert main(["run", "-m", *SLOW_PAIR, "runner=processes", "runner.max_jobs=1"]) == 0
    jobs = _runs().query("`tags.loom.run_type` == 'job'").sort_values("start_time")
    assert len(jobs) == 2 and jobs["start_time"].iloc[1] >= jobs["end_time"].iloc[0]


def test_exclusive_jobs_and_crash_suspects_start_only_alone() -> None:
    from framework.compose import Composer
    from framework.engine import _may_start
    from framework.job import Job, JobPlan

    config = Composer().compose(["scenario=synthetic"])
    exclusive = Composer().compose(["scenario=storage_benchmark"])  # it measures throughput
    assert not config.scenario.exclusive and exclusive.scenario.exclusive

    def plan(index: int, cfg: Any) -> JobPlan:
        return JobPlan(Job(index, [], cfg), Path("."), "e", None, {}, {})

    shared, other, alone = plan(0, config), plan(1, config), plan(2, exclusive)
    assert _may_start(other, [shared], 2, set())
    assert not _may_start(other, [shared], 1, set())  # slots
    assert not _may_start(alone, [shared], 2, set()) and _may_start(alone, [], 2, set())
    assert not _may_start(other, [alone], 2, set())  # nothing joins an exclusive job
    assert not _may_start(other, [shared], 2, {1}) and _may_start(other, [], 2, {1})


@pytest.mark.parametrize("recipe", ["greenfaas/live", "accounting/measured"])
def test_recipes_that_measure_the_machine_cap_jobs_whatever_the_runner(recipe: str) -> None:
    from framework.compose import Composer

    for runner in ("runner=processes", "runner=dask", "runner=threads"):
        config = Composer().compose([f"recipe={recipe}", runner, "runner.workers=2"])
        assert config.root.runner.slots == 1, runner


def test_a_job_whose_config_has_a_field_named_keys_runs_in_a_process_pool(
    workdir: Path, plugin: str
) -> None:
    # events.producers.keys: Prefect took the model for a mapping and the job never started.
    argv = ["run", "-m", "scenario=event_throughput", "events.producers.events=200,300"]
    assert main([*argv, "energy=none", "runner=processes"]) == 0
    jobs = _runs("no-recipe/event_throughput")
    jobs = jobs[jobs["tags.loom.run_type"] == "job"]
    assert len(jobs) == 2 and set(jobs["status"]) == {"FINISHED"}
