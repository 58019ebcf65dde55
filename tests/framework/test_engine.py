"""End to end: loom run → Prefect flow → MLflow contents and run folders, read back."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from framework.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def _uri() -> str:
    # Absolute, as the tracker writes: MLflow caches a store by URI across the tests' chdirs.
    return f"sqlite:///{Path('results/mlflow.db').resolve()}"


SMALL = ["scenario.tasks=20", "scenario.payload_bytes=64", "scenario.plots=true"]


def _runs(experiment: str) -> pd.DataFrame:
    mlflow.set_tracking_uri(_uri())
    return mlflow.search_runs(experiment_names=[experiment])


def _artifacts(client: MlflowClient, run_id: str) -> set[str]:
    return {a.path for a in client.list_artifacts(run_id)}


def test_single_run_tracks_params_metrics_nested_trials_and_artifacts(workdir: Path) -> None:
    assert main(["run", "recipe=quickstart", "repeats=2", *SMALL]) == 0
    runs = _runs("quickstart")
    jobs = runs[runs["tags.loom.run_type"] == "job"]
    trials = runs[runs["tags.loom.run_type"] == "trial"]
    assert len(jobs) == 1 and len(trials) == 2
    job = jobs.iloc[0]
    assert (trials["tags.mlflow.parentRunId"] == job["run_id"]).all()
    assert job["status"] == "FINISHED"
    assert job["params.scenario.tasks"] == "20"
    assert job["params.executor.kind"] == "thread"
    assert job["tags.recipe"] == "quickstart" and job["tags.scenario"] == "synthetic"
    assert job["metrics.result_verified"] == 1.0
    assert job["metrics.tasks"] == 20.0
    assert "metrics.makespan_s_std" in runs
    mean = trials["metrics.makespan_s"].mean()
    assert job["metrics.makespan_s"] == pytest.approx(mean)

    client = MlflowClient(_uri())
    assert {"config.yaml", "environment.json", "metrics.json"} <= _artifacts(client, job["run_id"])
    assert {"tasks.jsonl", "timeline.png", "latency.png", "metrics.json"} <= _artifacts(
        client, trials.iloc[0]["run_id"]
    )

    run_dir = Path(job["tags.loom.run_dir"])
    assert run_dir.parent == Path("results/quickstart").resolve()  # absolute: workers read it
    env = json.loads((run_dir / "environment.json").read_text())
    assert env["cpu_count"] >= 1 and env["packages"]["prefect"]
    records = (run_dir / "trial-000" / "tasks.jsonl").read_text().splitlines()
    assert len(records) == 20
    first = json.loads(records[0])
    assert first["submit_time"] <= first["start_time"] <= first["end_time"] <= first["done_time"]
    assert first["bytes_in"] == 64 and first["bytes_out"] == 64 and first["attempts"] == 1


def test_sweep_makes_parent_with_a_child_per_job_and_resume_skips(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = [
        "run",
        "-m",
        "recipe=taps/structures",
        "executor=thread,process",
        "scenario.tasks=10,20",
        "repeats=1",
        "scenario.plots=false",
    ]
    assert main(sweep) == 0
    runs = _runs("taps/structures")
    parents = runs[runs["tags.loom.run_type"] == "sweep"]
    jobs = runs[runs["tags.loom.run_type"] == "job"]
    assert len(parents) == 1 and len(jobs) == 4
    assert (jobs["tags.mlflow.parentRunId"] == parents.iloc[0]["run_id"]).all()
    assert set(zip(jobs["params.executor.kind"], jobs["params.scenario.tasks"], strict=True)) == {
        ("thread", "10"),
        ("thread", "20"),
        ("process", "10"),
        ("process", "20"),
    }
    assert (jobs["metrics.result_verified"] == 1.0).all()

    # Resume: the four done jobs are skipped; only the two new ones run.
    assert main([*sweep[:4], "scenario.tasks=10,20,30", *sweep[5:], "resume=true"]) == 0
    jobs = _runs("taps/structures").query("`tags.loom.run_type` == 'job'")
    assert len(jobs) == 6
    assert sorted(jobs["params.scenario.tasks"]) == ["10", "10", "20", "20", "30", "30"]

    # A resume with nothing left writes nothing: no folder, no MLflow run, no Prefect flow.
    folders = sorted((workdir / "results/taps/structures").iterdir())
    runs_before = len(_runs("taps/structures"))
    capsys.readouterr()
    assert main([*sweep[:4], "scenario.tasks=10,20,30", *sweep[5:], "resume=true"]) == 0
    assert sorted((workdir / "results/taps/structures").iterdir()) == folders
    assert len(_runs("taps/structures")) == runs_before
    printed = capsys.readouterr().out
    assert "Nothing to run" in printed and printed.count("skipped (resume") == 6

    # The report compares the jobs on what differs between them.
    assert main(["report", "taps/structures", "--metrics", "tasks_per_s,makespan_s"]) == 0
    table = pd.read_csv(workdir / "results/reports/taps_structures.csv")
    assert len(table) == 6
    # Component choices read as chosen on the command line (executor=thread), not as kinds.
    assert {"executor", "scenario.tasks", "tasks_per_s", "makespan_s_std"} <= set(table)
    assert set(table["executor"]) == {"thread", "process"} and "executor.kind" not in table
    assert (workdir / "results/reports/taps_structures.png").stat().st_size > 10_000
    # A misspelt metric gets a hint; where the runs are is said as for loom run.
    capsys.readouterr()
    assert main(["report", "taps/structures", "--metrics", "tasks_per_sec"]) == 2
    assert "did you mean 'tasks_per_s'?" in capsys.readouterr().err
    uri = f"tracking.uri=sqlite:///{workdir / 'results' / 'mlflow.db'}"
    assert main(["report", "taps/structures", uri]) == 0


def test_trial_retries_recover_a_flaky_trial(workdir: Path, plugin: str) -> None:
    import importlib

    module = importlib.import_module(plugin)
    module.ATTEMPTS["count"] = 0
    assert main(["run", "scenario=flaky", "retries=2", "scenario.fail_first=1"]) == 0
    runs = _runs("no-recipe/flaky")
    job = runs[runs["tags.loom.run_type"] == "job"].iloc[0]
    assert job["metrics.attempts_seen"] == 2.0
    trials = runs[runs["tags.loom.run_type"] == "trial"]
    assert sorted(trials["status"]) == ["FAILED", "FINISHED"]  # the failed attempt is kept


def test_failed_trial_fails_the_job_with_a_message(
    workdir: Path, plugin: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib

    importlib.import_module(plugin).ATTEMPTS["count"] = 0
    assert main(["run", "scenario=flaky", "scenario.fail_first=5"]) == 1
    out = capsys.readouterr().out
    assert "RuntimeError: flaky attempt 1" in out
    job = _runs("no-recipe/flaky").query("`tags.loom.run_type` == 'job'").iloc[0]
    assert job["status"] == "FAILED"
    # The evidence survives without -v: the whole traceback, in the folder and in MLflow.
    error = Path(job["tags.loom.run_dir"], "error.txt").read_text()
    assert error.startswith("RuntimeError: flaky attempt 1") and "Traceback" in error
    assert "error.txt" in _artifacts(MlflowClient(_uri()), job["run_id"])


def test_plugin_executor_runs_a_real_scenario(workdir: Path, plugin: str) -> None:
    assert (
        main(["run", "executor=inline", "executor.workers=2", *SMALL, "scenario.plots=false"]) == 0
    )
    job = _runs("no-recipe/synthetic").query("`tags.loom.run_type` == 'job'").iloc[0]
    assert job["params.executor.kind"] == "inline"
    assert job["metrics.result_verified"] == 1.0
    assert job["metrics.workers"] == 2.0


@pytest.mark.slow
def test_dash_j_runs_a_sweeps_jobs_in_worker_processes(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_HOME", str(workdir / "prefect-home"))  # a fresh local database
    status = main(
        [
            "run",
            "-j",
            "2",
            "recipe=drex/reliability_sweep",
            "placement=drex_lb",
            "scenario.replay=1",
            "scenario.reliability=0.9,0.999,0.99999",
        ]
    )
    assert status == 0
    sweeps = sorted(Path("results", "drex", "reliability_sweep").glob("*/sweep.json"))
    assert len(sweeps) == 1  # one flow, one sweep, whatever the runner
    jobs = [row for path in sweeps for row in json.loads(path.read_text())]
    assert sorted(row["job"] for row in jobs) == [0, 1, 2]
    assert all(row["status"] == "finished" for row in jobs)
    assert all(row["metrics"]["items_stored"] == 4157 for row in jobs)
    # Two jobs at once: each is charged half the machine's idle power and TDP.
    shares = {
        yaml.safe_load((Path(r["run_dir"]) / "config.yaml").read_text())["energy"]["share"]
        for r in jobs
    }
    assert shares == {0.5}


def test_octopus_acl_recipe_refuses_serves_and_refuses_again(workdir: Path) -> None:
    assert main(["run", "recipe=octopus/acl", "scenario.events=50"]) == 0
    job = _runs("octopus/acl").query("`tags.loom.run_type` == 'job'").iloc[0]
    assert job["metrics.unexpected_outcomes"] == 0
    assert job["metrics.checks_passed"] == 8
    assert job["metrics.events_read_with_grant"] == 50
    rows = (Path(job["tags.loom.run_dir"]) / "trial-000" / "access.jsonl").read_text()
    assert rows.count('"allowed":false') == 7
