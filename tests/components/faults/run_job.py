"""Run one job end to end (compose, validate, build, trial) on a fake tracker, for fault tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.compose import Composer
from framework.job import Job, JobPlan, JobResult, JobRunner
from tests.framework.test_job import FakeTracker


@dataclass
class Ran:
    """A finished (or failed) job and what its first trial left."""

    result: JobResult
    trial_dir: Path

    @property
    def metrics(self) -> dict[str, float]:
        """The first trial's metrics."""
        data: dict[str, float] = json.loads((self.trial_dir / "metrics.json").read_text())
        return data

    def rows(self, name: str) -> list[dict[str, Any]]:
        """The first trial's records ``<name>.jsonl``."""
        path = self.trial_dir / f"{name}.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]

    def error(self) -> str:
        """The job's error.txt (a failed job)."""
        return (self.trial_dir.parent / "error.txt").read_text()


def run_job(tmp_path: Path, *overrides: str) -> Ran:
    """Run the job these overrides make (energy=none, one trial) and return what it left."""
    config = Composer().compose(["energy=none", *overrides])
    plan = JobPlan(
        Job(0, list(overrides), config), tmp_path / "job", "exp", None, {"recipe": "t"}, {}
    )
    result = JobRunner(plan, FakeTracker()).run()
    return Ran(result, tmp_path / "job" / "trial-000")
