"""A job's stages alone, on a fake tracker: what each records, and a failure's evidence."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from components.error_info import ErrorInfo
from framework.compose import Composer
from framework.job import Job, JobPlan, JobRunner


class FakeTracker:
    """Keeps what a job records, in memory."""

    def __init__(self, fail_on_metrics: bool = False) -> None:
        self.runs: dict[str, dict[str, Any]] = {}
        self.fail_on_metrics = fail_on_metrics

    def start_run(
        self, experiment_id: str, name: str, tags: Mapping[str, str], parent_id: str | None = None
    ) -> str:
        run_id = f"run-{len(self.runs)}"
        self.runs[run_id] = {
            "name": name,
            "tags": dict(tags),
            "parent": parent_id,
            "params": {},
            "metrics": {},
            "artifacts": [],
            "status": None,
        }
        return run_id

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        self.runs[run_id]["params"].update(params)

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        if self.fail_on_metrics:
            raise OSError("the tracking store is full")
        self.runs[run_id]["metrics"].update(metrics)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        self.runs[run_id]["tags"].update(tags)

    def log_artifact(self, run_id: str, path: Path) -> None:
        self.runs[run_id]["artifacts"].append(path.name)

    def log_artifacts(self, run_id: str, folder: Path) -> None:
        self.runs[run_id]["artifacts"] += sorted(p.name for p in folder.iterdir())

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.runs[run_id]["status"] = status


def _plan(tmp_path: Path, *overrides: str) -> JobPlan:
    config = Composer().compose(["scenario.tasks=12", "energy=model", *overrides])
    job = Job(0, list(overrides), config)
    return JobPlan(
        job,
        tmp_path / "job",
        "exp-1",
        "sweep-run",
        {"recipe": "default"},
        {"python": "3.11"},
        task_prefix="job-0-",
    )


def test_each_stage_records_its_part(tmp_path: Path) -> None:
    tracker = FakeTracker()
    runner = JobRunner(_plan(tmp_path, "repeats=2"), tracker)
    job_run = runner.setup()
    assert tracker.runs[job_run]["parent"] == "sweep-run"
    assert tracker.runs[job_run]["params"]["scenario.tasks"] == "12"
    assert {"config.yaml", "environment.json", "overrides.txt"} <= {
        p.name for p in (tmp_path / "job").iterdir()
    }
    first = runner.trial(0)
    assert first["tasks"] == 12 and first["tasks_failed"] == 0 and first["energy_j"] > 0
    trial_runs = [r for r in tracker.runs.values() if r["tags"].get("loom.run_type") == "trial"]
    assert len(trial_runs) == 1 and trial_runs[0]["parent"] == job_run
    assert trial_runs[0]["status"] == "FINISHED" and "metrics.json" in trial_runs[0]["artifacts"]
    runner.trial(1)
    runner.teardown()
    metrics = runner.report()
    assert metrics["tasks"] == 12 and "tasks_std" in metrics
    assert "metrics.json" in tracker.runs[job_run]["artifacts"]


def test_run_goes_through_every_stage_under_the_names_it_is_given(tmp_path: Path) -> None:
    names: list[str] = []

    def stage(name: str, run_name: str, fn: Any, **options: Any) -> Any:
        names.append(run_name)
        return fn

    result = JobRunner(_plan(tmp_path, "repeats=2"), FakeTracker(), stage=stage).run()
    assert result.status == "finished" and result.error is None
    assert names == [
        "job-0-setup",
        "job-0-trial-0",
        "job-0-trial-1",
        "job-0-teardown",
        "job-0-report",
    ]


def test_a_failure_keeps_its_evidence_and_still_tears_down(tmp_path: Path) -> None:
    tracker = FakeTracker(fail_on_metrics=True)
    runner = JobRunner(_plan(tmp_path), tracker)
    result = runner.run()
    assert result.status == "failed" and result.error is not None
    assert result.error.line == "OSError: the tracking store is full"
    assert "Traceback (most recent call last)" in result.error.traceback
    text = (tmp_path / "job" / "error.txt").read_text()
    assert text.startswith("OSError: the tracking store is full") and "log_metrics" in text
    job_run = tracker.runs["run-0"]
    assert job_run["status"] == "FAILED" and "error.txt" in job_run["artifacts"]
    assert runner.stack.close() is None  # closed already: closing again is harmless


def test_error_info_of_an_exception_without_a_message() -> None:
    try:
        raise KeyError()
    except KeyError as exc:
        info = ErrorInfo.of(exc)
    assert info.line == "KeyError" and info.to_dict()["type"] == "KeyError"
