"""The Prefect flow: one flow run per ``loom run``, stages as Prefect tasks.

Per job: setup → trial × repeats → teardown → report. The only module that talks to Prefect.

Fine-grained work (tasks, chunks, events) runs on the component's own fast path inside a trial;
Prefect sees stages and trials only.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from components.base import RunContext, Scenario
from components.energy.base import EnergyMeter, NoMeter
from components.pricing.base import Pricing
from framework import __version__
from framework.config import RunConfig
from framework.environment import environment
from framework.progress import RichProgress
from framework.results import new_run_dir, write_json, write_yaml
from framework.tracking import OPTION_TAG_PREFIX, Tracker, quiet_mlflow


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
class Job:
    """One configuration to run ``repeats`` times."""

    index: int
    overrides: list[str]
    config: RunConfig

    @property
    def label(self) -> str:
        """Short name from the overrides that define it."""
        return " ".join(o for o in self.overrides if not o.startswith("recipe=")) or "defaults"


@dataclass
class JobResult:
    """What became of a job."""

    job: Job
    status: str  # finished | failed | skipped
    run_id: str | None = None
    run_dir: Path | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Invocation:
    """What one ``loom run`` did."""

    recipe: str
    run_dir: Path
    tracking_uri: str
    results: list[JobResult]
    timings: dict[str, float]


def aggregate(trials: list[dict[str, float]]) -> dict[str, float]:
    """Mean (as ``name``) and standard deviation (``name_std``) of each metric over trials."""
    out: dict[str, float] = {}
    for name in sorted({k for t in trials for k in t}):
        values = [t[name] for t in trials if name in t]
        out[name] = statistics.fmean(values)
        out[f"{name}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return out


class _Session:
    """A job's live state between its stages.

    Deliberately not a dataclass: Prefect walks dataclass parameters, and this holds open
    components.
    """

    def __init__(self, job: Job, run_dir: Path, run_id: str) -> None:
        self.job = job
        self.run_dir = run_dir
        self.run_id = run_id
        self.stack = ExitStack()
        self.components: dict[str, object] = {}
        self.scenario: Scenario | None = None
        self.meter: EnergyMeter = NoMeter()
        self.pricing: Pricing = _default_pricing()
        self.trials: list[dict[str, float]] = []


def _default_pricing() -> Pricing:
    return Pricing("node_hours", 1, 1.0)


def _build(config: object, default: Any) -> Any:
    """The engine group's component, or its default where the job has none."""
    return default() if config is None else config.build()  # type: ignore[attr-defined]


def _error_text(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
    by_index = {job.index: job for job in jobs}  # a worker of `loom run -j` has some jobs only
    recipe = first.recipe
    results_dir = Path(first.root.results_dir)

    started = time.perf_counter()
    configure_prefect(verbose)
    from prefect import flow, tags, task
    from prefect.cache_policies import NO_CACHE

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
    sessions: dict[int, _Session] = {}
    results: list[JobResult] = []
    progress = RichProgress(console)

    def stage(name: str) -> Any:
        return task(name=name, cache_policy=NO_CACHE, persist_result=False)

    @stage("setup")
    def setup(index: int, parent_run_id: str | None) -> str:
        job = by_index[index]
        cfg = job.config
        job_dir = invocation_dir / f"job-{index:03d}" if sweep else invocation_dir
        job_dir.mkdir(parents=True, exist_ok=True)
        run_id = tracker.start_run(
            experiment_id,
            job.label,
            {
                **base_tags,
                "scenario": cfg.scenario.kind,
                "loom.run_type": "job",
                "loom.config_hash": cfg.config_hash(),
                "loom.overrides": " ".join(job.overrides),
                "loom.run_dir": str(job_dir),
                **{f"{OPTION_TAG_PREFIX}{g}": o for g, o in cfg.options.items()},
            },
            parent_id=parent_run_id,
        )
        session = sessions[index] = _Session(job, job_dir, run_id)
        tracker.log_params(run_id, cfg.flat())
        write_yaml(job_dir / "config.yaml", cfg.to_dict())
        write_json(job_dir / "environment.json", env)
        (job_dir / "overrides.txt").write_text("\n".join(job.overrides) + "\n", encoding="utf-8")
        for group in cfg.scenario.needs():
            component = cfg.groups[group].build()
            if isinstance(component, AbstractContextManager):  # servers, pools: closed at teardown
                component = session.stack.enter_context(component)
            session.components[group] = component
        session.scenario = cfg.scenario.build()
        session.meter = _build(cfg.groups.get("energy"), NoMeter)
        session.pricing = _build(cfg.groups.get("pricing"), _default_pricing)
        return run_id

    @stage("trial")
    def trial(index: int, number: int) -> dict[str, float]:
        session = sessions[index]
        cfg = session.job.config
        trial_dir = session.run_dir / f"trial-{number:03d}"
        shutil.rmtree(trial_dir, ignore_errors=True)  # a retried trial starts clean
        trial_dir.mkdir(parents=True)
        child = tracker.start_run(
            experiment_id,
            f"trial-{number}",
            {
                **base_tags,
                "scenario": cfg.scenario.kind,
                "loom.run_type": "trial",
            },
            parent_id=session.run_id,
        )
        ctx = RunContext(
            components=session.components,
            seed=cfg.root.seed,
            trial=number,
            run_dir=trial_dir,
            progress=progress,
            watts_per_thread=getattr(session.meter, "watts_per_thread", None),
        )
        assert session.scenario is not None
        measurement = session.meter.start()
        try:
            session.scenario.run(ctx)
        except BaseException:
            measurement.stop()
            tracker.end_run(child, "FAILED")
            raise
        reading = measurement.stop()
        ctx.log_metrics(session.pricing.charge(reading))
        accounting = {"energy.source": reading.source, "pricing.scheme": session.pricing.scheme}
        tracker.set_tags(child, accounting)
        if reading.constants:
            tracker.log_params(child, reading.constants)
        if not session.trials:  # the job run: once, from its first trial
            tracker.set_tags(session.run_id, accounting)
            if reading.constants:
                tracker.log_params(session.run_id, reading.constants)
        write_json(trial_dir / "metrics.json", ctx.metrics)
        tracker.log_metrics(child, ctx.metrics)
        tracker.log_artifacts(child, trial_dir)
        tracker.end_run(child)
        session.trials.append(ctx.metrics)
        return ctx.metrics

    @stage("teardown")
    def teardown(index: int) -> None:
        sessions[index].stack.close()

    @stage("report")
    def report(index: int) -> dict[str, float]:
        session = sessions[index]
        metrics = aggregate(session.trials)
        write_json(
            session.run_dir / "metrics.json", {"aggregate": metrics, "trials": session.trials}
        )
        tracker.log_metrics(session.run_id, metrics)
        for path in sorted(session.run_dir.iterdir()):
            if path.is_file():
                tracker.client.log_artifact(session.run_id, str(path))
        return metrics

    def run_job(job: Job, parent_run_id: str | None) -> JobResult:
        cfg = job.config
        if cfg.root.resume and (done := tracker.finished_run(experiment_id, cfg.config_hash())):
            return JobResult(job, "skipped", run_id=done)
        prefix = f"job-{job.index}-" if sweep else ""
        state = setup.with_options(task_run_name=f"{prefix}setup")(
            job.index, parent_run_id, return_state=True
        )
        session = sessions.get(job.index)
        error = None if state.is_completed() else _error_text(state.result(raise_on_failure=False))
        if error is None and session is not None:
            trial_task = trial.with_options(
                retries=cfg.root.retries, retry_delay_seconds=cfg.root.retry_delay_s
            )
            with progress.bar(f"{job.label}: trials", cfg.root.repeats) as bar:
                for number in range(cfg.root.repeats):
                    state = trial_task.with_options(task_run_name=f"{prefix}trial-{number}")(
                        job.index, number, return_state=True
                    )
                    if not state.is_completed():
                        error = _error_text(state.result(raise_on_failure=False))
                        break
                    bar.update(number + 1)
        if session is not None:
            teardown.with_options(task_run_name=f"{prefix}teardown")(job.index)
        metrics: dict[str, float] = {}
        if error is None and session is not None:
            metrics = report.with_options(task_run_name=f"{prefix}report")(job.index)
        run_id = session.run_id if session else None
        if run_id:
            tracker.end_run(run_id, "FAILED" if error else "FINISHED")
        return JobResult(
            job,
            "failed" if error else "finished",
            run_id=run_id,
            run_dir=session.run_dir if session else None,
            metrics=metrics,
            error=error,
        )

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
            tracker.client.log_artifact(sweep_run, str(invocation_dir / "sweep.json"))
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
                "error": r.error,
                "metrics": r.metrics,
            }
            for r in results
        ],
    )
