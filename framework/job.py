"""One job of an invocation: setup → trial × repeats → teardown → report, wherever it runs.

A job is a self-contained unit of work. It receives its validated config and where to record
(a :class:`JobPlan`, picklable), builds its components, runs its stages and records to the
tracking URI from the process it runs in: the flow's own, a pool worker or a Dask worker. The
engine makes each stage a Prefect task by passing a ``stage`` wrapper; tests pass none and a fake
tracker, and the stages run as plain calls.
"""

from __future__ import annotations

import logging
import shutil
import statistics
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from components.base import ProgressReporter, RunContext, Scenario, SilentProgress
from components.energy.protocol import EnergyMeter, NoMeter
from components.error_info import ErrorInfo
from components.faults.run import FaultSchedule
from components.pricing.protocol import Pricing
from components.protocols import check_provides
from framework.config import JobConfig
from framework.results import write_json, write_yaml
from framework.tracking import OPTION_TAG_PREFIX

log = logging.getLogger(__name__)


@dataclass
class Job:
    """One configuration to run ``repeats`` times."""

    index: int
    overrides: list[str]
    config: JobConfig

    @property
    def label(self) -> str:
        """Short name from the overrides that define it."""
        return " ".join(o for o in self.overrides if not o.startswith("recipe=")) or "defaults"


@dataclass
class JobResult:
    """What became of a job (picklable: it comes back from workers)."""

    job: Job
    status: str  # finished | failed | skipped
    run_id: str | None = None
    run_dir: Path | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: ErrorInfo | None = None


@dataclass(frozen=True)
class JobPlan:
    """A job and where it records: everything a worker needs, and nothing open."""

    job: Job
    job_dir: Path
    experiment_id: str
    parent_run_id: str | None
    tags: Mapping[str, str]  # the invocation's: recipe, git commit, Loom version
    environment: Mapping[str, Any]
    task_prefix: str = ""  # "job-3-" in a sweep: Prefect task runs say whose stage they are
    tracking_uri: str | None = None  # as the flow resolved it (a worker's folder may differ)
    run_name: str = ""  # the MLflow run's name: what sets the job apart, and the invocation's id


class JobTracker(Protocol):
    """What a job records through (``framework.tracking.Tracker``; a fake in tests)."""

    def start_run(
        self, experiment_id: str, name: str, tags: Mapping[str, str], parent_id: str | None = None
    ) -> str:
        """Create a run, nested under ``parent_id``; its id."""

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        """Log params."""

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        """Log metrics."""

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set tags."""

    def log_artifact(self, run_id: str, path: Path) -> None:
        """Upload one file."""

    def log_artifacts(self, run_id: str, folder: Path) -> None:
        """Upload every file under ``folder``."""

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        """Mark the run FINISHED or FAILED."""


# (stage name, run name, function, options) -> the function run as that stage. The engine
# makes it a Prefect task named ``setup`` whose run is ``job-3-setup``; options are Prefect's.
Stage = Callable[..., Callable[..., Any]]


def plain_stage(
    name: str, run_name: str, fn: Callable[..., Any], **options: Any
) -> Callable[..., Any]:
    """Run a stage as a plain call (tests, and wherever Prefect is not wanted)."""
    del name, run_name, options
    return fn


def aggregate(trials: list[dict[str, float]]) -> dict[str, float]:
    """Mean (as ``name``) and standard deviation (``name_std``) of each metric over trials."""
    out: dict[str, float] = {}
    for name in sorted({k for t in trials for k in t}):
        values = [t[name] for t in trials if name in t]
        out[name] = statistics.fmean(values)
        out[f"{name}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return out


def _default_pricing() -> Pricing:
    return Pricing("node_hours", 1, 1.0)


def _no_faults() -> FaultSchedule:
    return FaultSchedule([])


def _build(config: object, default: Callable[[], Any]) -> Any:
    """The engine group's component, or its default where the job has none."""
    return default() if config is None else config.build()  # type: ignore[attr-defined]


class JobRunner:
    """Runs one job's stages and records them.

    Args:
        plan: The job and where it records.
        tracker: Where runs, params, metrics and artifacts go.
        progress: Where trial and task progress bars go (silent in workers).
        stage: Wraps each stage (the engine: a Prefect task of that name).

    """

    def __init__(
        self,
        plan: JobPlan,
        tracker: JobTracker,
        progress: ProgressReporter | None = None,
        stage: Stage = plain_stage,
    ) -> None:
        self.plan = plan
        self.tracker = tracker
        self.progress = progress or SilentProgress()
        self.stage = stage
        self.stack = ExitStack()
        self.run_id: str | None = None
        self.components: dict[str, object] = {}
        self.scenario: Scenario | None = None
        self.meter: EnergyMeter = NoMeter()
        self.pricing: Pricing = _default_pricing()
        self.faults: FaultSchedule = _no_faults()
        self.trials: list[dict[str, float]] = []

    @property
    def config(self) -> JobConfig:
        """The job's validated config."""
        return self.plan.job.config

    def setup(self) -> str:
        """Open the job's MLflow run, write its folder, build and open its components."""
        plan, cfg = self.plan, self.config
        plan.job_dir.mkdir(parents=True, exist_ok=True)
        self.run_id = self.tracker.start_run(
            plan.experiment_id,
            plan.run_name or plan.job.label,
            {
                **plan.tags,
                "scenario": cfg.scenario.kind,
                "loom.run_type": "job",
                "loom.config_hash": cfg.config_hash(),
                "loom.overrides": " ".join(plan.job.overrides),
                "loom.run_dir": str(plan.job_dir),
                **{f"{OPTION_TAG_PREFIX}{g}": o for g, o in cfg.options.items()},
            },
            parent_id=plan.parent_run_id,
        )
        self.tracker.log_params(self.run_id, cfg.flat())
        write_yaml(plan.job_dir / "config.yaml", cfg.to_dict())
        write_json(plan.job_dir / "environment.json", dict(plan.environment))
        (plan.job_dir / "overrides.txt").write_text(
            "\n".join(plan.job.overrides) + "\n", encoding="utf-8"
        )
        for group in cfg.needs():
            component = cfg.groups[group].build()
            if isinstance(component, AbstractContextManager):  # servers, pools: closed at teardown
                component = self.stack.enter_context(component)
            check_provides(group, cfg.groups[group].kind, component)
            self.components[group] = component
        self.scenario = cfg.scenario.build()
        check_provides("scenario", cfg.scenario.kind, self.scenario)
        self.meter = _build(cfg.groups.get("energy"), NoMeter)
        self.pricing = _build(cfg.groups.get("pricing"), _default_pricing)
        self.faults = _build(cfg.groups.get("faults"), _no_faults)
        for group, built in (
            ("energy", self.meter),
            ("pricing", self.pricing),
            ("faults", self.faults),
        ):
            option = cfg.groups.get(group)
            check_provides(group, option.kind if option else "default", built)
        return self.run_id

    def trial(self, number: int) -> dict[str, float]:
        """Run trial ``number`` in a child run of its own; its metrics."""
        assert self.run_id is not None and self.scenario is not None, "setup first"
        cfg = self.config
        trial_dir = self.plan.job_dir / f"trial-{number:03d}"
        shutil.rmtree(trial_dir, ignore_errors=True)  # a retried trial starts clean
        trial_dir.mkdir(parents=True)
        child = self.tracker.start_run(
            self.plan.experiment_id,
            f"trial-{number}",
            {**self.plan.tags, "scenario": cfg.scenario.kind, "loom.run_type": "trial"},
            parent_id=self.run_id,
        )
        measurement = self.meter.start()
        try:
            # The schedule runs beside the scenario; a failure carries the faults before it.
            with self.faults.during(cfg.root.seed, self.components) as faults:
                ctx = RunContext(
                    components={**self.components, "faults": faults},
                    seed=cfg.root.seed,
                    trial=number,
                    run_dir=trial_dir,
                    progress=faults.progress(self.progress),
                    watts_per_thread=getattr(self.meter, "watts_per_thread", None),
                    sites=cfg.root.sites,
                )
                self.scenario.run(ctx)
        except BaseException as exc:
            measurement.stop()
            self._keep_error(trial_dir, child, ErrorInfo.of(exc))
            self.tracker.end_run(child, "FAILED")
            raise
        if faults.faults:
            ctx.log_metrics(faults.metrics())
            ctx.write_records("faults", (o.record() for o in faults.occurrences))
        reading = measurement.stop()
        ctx.log_metrics(self.pricing.charge(reading))
        accounting = {"energy.source": reading.source, "pricing.scheme": self.pricing.scheme}
        self.tracker.set_tags(child, accounting)
        if reading.constants:
            self.tracker.log_params(child, reading.constants)
        if not self.trials:  # the job run: once, from its first trial
            self.tracker.set_tags(self.run_id, accounting)
            if reading.constants:
                self.tracker.log_params(self.run_id, reading.constants)
        write_json(trial_dir / "metrics.json", ctx.metrics)
        self.tracker.log_metrics(child, ctx.metrics)
        self.tracker.log_artifacts(child, trial_dir)
        self.tracker.end_run(child)
        self.trials.append(ctx.metrics)
        return ctx.metrics

    def teardown(self) -> None:
        """Close what setup opened (servers, pools), last opened first."""
        self.stack.close()

    def report(self) -> dict[str, float]:
        """Aggregate the trials; write and log the job's metrics and files."""
        assert self.run_id is not None, "setup first"
        metrics = aggregate(self.trials)
        write_json(
            self.plan.job_dir / "metrics.json", {"aggregate": metrics, "trials": self.trials}
        )
        self.tracker.log_metrics(self.run_id, metrics)
        for path in sorted(self.plan.job_dir.iterdir()):
            if path.is_file():
                self.tracker.log_artifact(self.run_id, path)
        return metrics

    def run(self) -> JobResult:
        """Every stage in order; a failure ends the job with its evidence kept."""
        cfg, prefix = self.config, self.plan.task_prefix
        error: ErrorInfo | None = None
        metrics: dict[str, float] = {}
        try:
            self.stage("setup", f"{prefix}setup", self.setup)()
            log.info(
                "job %s: MLflow run %s, config hash %s",
                self.plan.run_name or self.plan.job.label,
                self.run_id,
                cfg.config_hash(),
            )
            retries = {"retries": cfg.root.retries, "retry_delay_seconds": cfg.root.retry_delay_s}
            with self.progress.bar(f"{self.plan.job.label}: trials", cfg.root.repeats) as bar:
                for number in range(cfg.root.repeats):
                    stage = self.stage("trial", f"{prefix}trial-{number}", self.trial, **retries)
                    done = stage(number) or {}
                    bar.update(number + 1)
                    shown = [m for m in cfg.scenario.headline_metrics if m in done][:4]
                    log.info(
                        "trial %d of %d: %s",
                        number + 1,
                        cfg.root.repeats,
                        ", ".join(f"{m}={done[m]:.4g}" for m in shown) or "done",
                    )
        except Exception as exc:
            error = ErrorInfo.of(exc)
        try:
            self.stage("teardown", f"{prefix}teardown", self.teardown)()
        except Exception as exc:
            error = error or ErrorInfo.of(exc)
        if error is None:
            try:
                metrics = self.stage("report", f"{prefix}report", self.report)()
            except Exception as exc:
                error = ErrorInfo.of(exc)
        if self.run_id is not None:
            if error is not None:
                self._keep_error(self.plan.job_dir, self.run_id, error)
            self.tracker.end_run(self.run_id, "FAILED" if error else "FINISHED")
        name = self.plan.run_name or self.plan.job.label
        if error is None:
            log.info("job %s finished (MLflow run %s)", name, self.run_id)
        else:
            log.info("job %s failed: %s", name, error.line)  # the summary prints it
        return JobResult(
            self.plan.job,
            "failed" if error else "finished",
            run_id=self.run_id,
            run_dir=self.plan.job_dir if self.run_id else None,
            metrics=metrics,
            error=error,
        )

    def _keep_error(self, folder: Path, run_id: str, error: ErrorInfo) -> None:
        """``error.txt`` in ``folder``, logged to the run; never hides the error itself."""
        path = folder / "error.txt"
        try:
            path.write_text(f"{error.line}\n\n{error.traceback}", encoding="utf-8")
            self.tracker.log_artifact(run_id, path)
        except Exception:
            pass
