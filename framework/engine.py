"""The Prefect flow: one flow run per ``loom run``, stages as Prefect tasks.

Per job: setup → trial × repeats → teardown → report. The only module that talks to Prefect.

Fine-grained work (tasks, chunks, events) runs on the component's own fast path inside a trial;
Prefect sees stages and trials only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from framework import __version__
from framework.environment import environment
from framework.job import Job, JobPlan, JobResult, JobRunner
from framework.progress import RichProgress
from framework.results import new_run_dir, write_json
from framework.tracking import Tracker, quiet_mlflow

__all__ = ["Invocation", "Job", "JobResult", "configure_prefect", "run_invocation"]


def configure_prefect(verbose: bool) -> None:
    """Quiet, offline-friendly Prefect settings; must run before ``import prefect``."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # A cold ephemeral server on 2 busy cores can take longer than Prefect's 20 s default.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if verbose:
        os.environ["PREFECT_LOGGING_LEVEL"] = "INFO"
    else:  # Loom reports failures itself, one line each
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")


@dataclass
class Invocation:
    """What one ``loom run`` did."""

    recipe: str
    run_dir: Path
    tracking_uri: str
    results: list[JobResult]
    timings: dict[str, float]


def prefect_stage(
    name: str, run_name: str, fn: Callable[..., Any], retries: int = 0,
    retry_delay_seconds: float = 0.0,
) -> Callable[..., Any]:  # fmt: skip
    """A job's stage as a Prefect task named ``name`` whose run is ``run_name``.

    Calling it runs the task in the current flow (or task) run; a failure raises the stage's
    exception after its retries.
    """
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    made: Callable[..., Any] = task(
        name=name, task_run_name=run_name.replace("{", "{{").replace("}", "}}"),
        cache_policy=NO_CACHE, persist_result=False, retries=retries,
        retry_delay_seconds=retry_delay_seconds,
    )(fn)  # fmt: skip
    return made


def run_invocation(
    jobs: list[Job],
    *,
    root: Path,
    sweep: bool,
    cli_overrides: list[str],
    verbose: bool = False,
    console: Console | None = None,
) -> Invocation:
    """Run every job in one Prefect flow run and track it in MLflow."""
    console = console or Console(stderr=True)
    timings: dict[str, float] = {}
    first = jobs[0].config
    recipe = first.recipe
    results_dir = Path(first.root.results_dir)

    started = time.perf_counter()
    configure_prefect(verbose)
    from prefect import flow, tags

    timings["import_prefect_s"] = time.perf_counter() - started

    mark = time.perf_counter()
    quiet_mlflow(verbose)
    tracker = Tracker(first.root.tracking, results_dir)
    experiment_id = tracker.experiment_id(recipe)
    timings["mlflow_setup_s"] = time.perf_counter() - mark

    env = environment(root)
    invocation_dir = new_run_dir(results_dir, recipe)
    run_name = " ".join(cli_overrides) or "defaults"
    base_tags = {"recipe": recipe, "git_commit": env["git_commit"], "loom_version": __version__}
    results: list[JobResult] = []
    progress = RichProgress(console)

    def plan(job: Job, parent_run_id: str | None) -> JobPlan:
        return JobPlan(
            job,
            invocation_dir / f"job-{job.index:03d}" if sweep else invocation_dir,
            experiment_id,
            parent_run_id,
            base_tags,
            env,
            task_prefix=f"job-{job.index}-" if sweep else "",
        )

    def run_job(job: Job, parent_run_id: str | None) -> JobResult:
        cfg = job.config
        if cfg.root.resume and (done := tracker.finished_run(experiment_id, cfg.config_hash())):
            return JobResult(job, "skipped", run_id=done)
        return JobRunner(plan(job, parent_run_id), tracker, progress, prefect_stage).run()

    flow_name = recipe.replace("/", ".")

    @flow(
        name=flow_name,
        # Prefect formats the name with the flow's parameters: braces of a dict override
        # (fl.strategy={kind:fedprox}) must be literal.
        flow_run_name=run_name[:120].replace("{", "{{").replace("}", "}}"),
        persist_result=False,
        validate_parameters=False,
    )
    def loom_flow(recipe: str, jobs_overrides: list[list[str]]) -> None:
        del recipe, jobs_overrides  # shown in the Prefect UI; the jobs come from the closure
        sweep_run = None
        if sweep:
            sweep_run = tracker.start_run(
                experiment_id,
                f"sweep: {run_name}"[:250],
                {**base_tags, "loom.run_type": "sweep", "loom.run_dir": str(invocation_dir)},
            )
            tracker.log_params(
                sweep_run, {"sweep.overrides": run_name, "sweep.jobs": str(len(jobs))}
            )
        for job in jobs:
            results.append(run_job(job, sweep_run))
        if sweep_run:
            _write_sweep_table(invocation_dir, results)
            tracker.log_artifact(sweep_run, invocation_dir / "sweep.json")
            failed = any(r.status == "failed" for r in results)
            tracker.end_run(sweep_run, "FAILED" if failed else "FINISHED")

    scenario_tags = sorted({f"scenario:{j.config.scenario.kind}" for j in jobs})
    mark = time.perf_counter()
    with progress, tags(f"recipe:{recipe}", *scenario_tags):
        loom_flow(recipe, [j.overrides for j in jobs])
    timings["flow_s"] = time.perf_counter() - mark
    timings["total_s"] = time.perf_counter() - started
    write_json(invocation_dir / "timings.json", timings)
    return Invocation(recipe, invocation_dir, tracker.uri, results, timings)


def _write_sweep_table(folder: Path, results: list[JobResult]) -> None:
    write_json(
        folder / "sweep.json",
        [
            {
                "job": r.job.index,
                "overrides": r.job.overrides,
                "status": r.status,
                "run_id": r.run_id,
                "run_dir": str(r.run_dir) if r.run_dir else None,
                "error": r.error.to_dict() if r.error else None,
                "metrics": r.metrics,
            }
            for r in results
        ],
    )
