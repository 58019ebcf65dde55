"""The Prefect flow: one flow run per ``loom run``, stages as Prefect tasks.

Per job: setup → trial × repeats → teardown → report. The only module that talks to Prefect.

Fine-grained work (tasks, chunks, events) runs on the component's own fast path inside a trial;
Prefect sees stages and trials only.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from components.error_info import ErrorInfo
from framework import __version__
from framework.config import ACCOUNTING_METRICS
from framework.environment import environment
from framework.errors import LoomError
from framework.job import Job, JobPlan, JobResult, JobRunner
from framework.progress import RichProgress
from framework.results import new_run_dir, write_json
from framework.runners import task_runner
from framework.summary import differing_keys, metric_unit
from framework.tracking import Tracker, quiet_mlflow, sqlite_path, store_uri

__all__ = ["Invocation", "Job", "JobResult", "configure_prefect", "run_invocation"]


LOOM_LOGGERS = ("framework", "components")


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
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    # Loom's own log lines go to the flow run's logs in the Prefect UI; those from threads
    # outside a flow or task run (a pool's) are not the run's, and are dropped quietly.


def send_loom_logs_to_prefect() -> None:
    """Loom's log lines from this process go to the flow run's logs (once per process).

    Only the flow's own process sends them: a job on a worker process (runner=processes)
    would send them through the pool's message queue, which a killed worker can jam. A line
    from outside any flow or task run (a pool's thread) is not a run's, and is left out.
    """
    from prefect.context import FlowRunContext, TaskRunContext
    from prefect.logging.handlers import APILogHandler

    class RunLogHandler(APILogHandler):
        def emit(self, record: logging.LogRecord) -> None:
            if FlowRunContext.get() is not None or TaskRunContext.get() is not None:
                super().emit(record)

    for name in LOOM_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        if not any(isinstance(h, APILogHandler) for h in logger.handlers):
            logger.addHandler(RunLogHandler())


@dataclass
class Invocation:
    """What one ``loom run`` did."""

    recipe: str
    run_dir: Path | None  # None: every job was done before (resume), nothing was written
    tracking_uri: str
    results: list[JobResult]
    timings: dict[str, float]


def prefect_stage(
    name: str,
    run_name: str,
    fn: Callable[..., Any],
    retries: int = 0,
    retry_delay_seconds: float = 0.0,
) -> Callable[..., Any]:
    """A job's stage as a Prefect task named ``name`` whose run is ``run_name``.

    Calling it runs the task in the current flow (or task) run; a failure raises the stage's
    exception after its retries.
    """
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    made: Callable[..., Any] = task(
        name=name,
        task_run_name=run_name.replace("{", "{{").replace("}", "}}"),
        cache_policy=NO_CACHE,
        persist_result=False,
        retries=retries,
        retry_delay_seconds=retry_delay_seconds,
    )(fn)
    return made


def run_invocation(
    jobs: list[Job],
    *,
    root: Path,
    sweep: bool,
    cli_overrides: list[str],
    verbose: bool = False,
    console: Console | None = None,
    early_api: Any = None,
) -> Invocation:
    """Run every job in one Prefect flow run and track it in MLflow.

    ``early_api`` is the run's Prefect API server where the CLI already started one
    (:class:`~framework.services.ThrowawayPrefect`); it stops when the process exits, or
    here, where the run turns out not to need it.
    """
    console = console or Console(stderr=True)
    timings: dict[str, float] = {}
    first = jobs[0].config
    recipe = first.recipe
    results_dir = Path(first.root.results_dir)

    started = time.perf_counter()
    tracking = _use_services(first.root.tracking, results_dir)
    configure_prefect(verbose)
    from prefect import flow, tags

    send_loom_logs_to_prefect()

    runner = first.root.runner
    # Without resume, the API boots while MLflow is set up; with it, only if a job is left.
    resume = any(j.config.root.resume for j in jobs)
    prefect_api = None if resume else _LocalPrefectApi(runner, early_api)
    timings["import_prefect_s"] = time.perf_counter() - started

    mark = time.perf_counter()
    quiet_mlflow(verbose)
    tracker = Tracker(tracking, results_dir)
    experiment_id = tracker.experiment_id(recipe)
    timings["mlflow_setup_s"] = time.perf_counter() - mark

    skipped: dict[int, JobResult] = {}  # resume: the jobs a finished run already did
    for job in jobs if resume else ():
        cfg = job.config
        if cfg.root.resume and (done := tracker.finished_run(experiment_id, cfg.config_hash())):
            skipped[job.index] = JobResult(
                job, "skipped", run_id=done, metrics=tracker.job_metrics(done)
            )
    if resume and len(skipped) == len(jobs):  # no folder, no MLflow run, no Prefect flow run
        if early_api is not None:
            early_api.stop()
        return Invocation(recipe, None, tracker.uri, list(skipped.values()), timings)
    if prefect_api is None:
        prefect_api = _LocalPrefectApi(runner, early_api)

    def finished_before(job: Job) -> JobResult | None:
        return skipped.get(job.index)

    env = environment(root)
    invocation_dir = new_run_dir(results_dir, recipe)
    run_name = " ".join(cli_overrides) or "defaults"
    base_tags = {"recipe": recipe, "git_commit": env["git_commit"], "loom_version": __version__}
    results: list[JobResult] = []
    progress = RichProgress(console)
    slots = min(runner.slots, len(jobs))

    # Run names say what sets each job apart, and end with the invocation's id: unique.
    token = invocation_dir.name.rsplit("-", 1)[-1]
    differing = differing_keys([j.overrides for j in jobs]) if sweep else []
    names = {
        j.index: " ".join(f"{k}={v}" for k, v in differing[i].items()) if sweep else j.label
        for i, j in enumerate(jobs)
    }

    def plan(job: Job, parent_run_id: str | None) -> JobPlan:
        config = job.config.sharing_machine(slots) if not runner.remote else job.config
        return JobPlan(
            replace(job, config=config),
            (invocation_dir / f"job-{job.index:03d}" if sweep else invocation_dir).resolve(),
            experiment_id,
            parent_run_id,
            base_tags,
            env,
            task_prefix=f"job-{job.index}-" if sweep else "",
            tracking_uri=store_uri(tracker.uri),
            run_name=f"{names[job.index]} · {token}",
        )

    def run_here(job: Job, parent_run_id: str | None) -> JobResult:
        return (
            finished_before(job)
            or JobRunner(plan(job, parent_run_id), tracker, progress, prefect_stage).run()
        )

    def run_side_by_side(parent_run_id: str | None) -> list[JobResult]:
        done: dict[int, JobResult] = {}
        waiting: list[JobPlan] = []
        for job in jobs:
            if (skipped := finished_before(job)) is not None:
                done[job.index] = skipped
            else:
                waiting.append(plan(job, parent_run_id))
        with progress.bar(f"{len(waiting)} jobs on {runner.kind}", len(waiting)) as bar:
            done |= _side_by_side(waiting, runner, slots, lambda n: bar.update(n))
        return [done[job.index] for job in jobs]

    flow_name = recipe.replace("/", ".")

    def body() -> None:
        base_tags.update(_flow_run_tags(standing=prefect_api.standing))
        sweep_run = None
        if sweep:
            sweep_run = tracker.start_run(
                experiment_id,
                f"sweep: {run_name}"[:240] + f" · {token}",
                {**base_tags, "loom.run_type": "sweep", "loom.run_dir": str(invocation_dir)},
            )
            tracker.log_params(
                sweep_run, {"sweep.overrides": run_name, "sweep.jobs": str(len(jobs))}
            )
        try:
            if slots > 1:
                results.extend(run_side_by_side(sweep_run))
            else:
                results.extend(run_here(job, sweep_run) for job in jobs)
        except BaseException:
            if sweep_run:  # nothing left RUNNING in MLflow when the sweep cannot go on
                tracker.end_run(sweep_run, "FAILED")
            raise
        _leave_artifacts(recipe, results, names, tracker.uri, experiment_id)
        if sweep_run:
            _write_sweep_table(invocation_dir, results)
            tracker.log_artifact(sweep_run, invocation_dir / "sweep.json")
            failed = any(r.status == "failed" for r in results)
            tracker.end_run(sweep_run, "FAILED" if failed else "FINISHED")

    loom_flow = flow(
        name=flow_name,
        # Prefect formats the name with the flow's parameters: braces of a dict override
        # (fl.strategy={kind:fedprox}) must be literal.
        flow_run_name=run_name[:120].replace("{", "{{").replace("}", "}}"),
        persist_result=False,
        validate_parameters=False,
    )(_flow_body)
    key = invocation_dir.name
    _BODIES[key] = body
    scenario_tags = sorted({f"scenario:{j.config.scenario.kind}" for j in jobs})
    mark = time.perf_counter()
    with progress, tags(f"recipe:{recipe}", *scenario_tags), prefect_api.settings():
        try:
            loom_flow(recipe, [j.overrides for j in jobs], key)
        finally:
            del _BODIES[key]
    timings["flow_s"] = time.perf_counter() - mark
    timings["total_s"] = time.perf_counter() - started
    write_json(invocation_dir / "timings.json", timings)
    return Invocation(recipe, invocation_dir, tracker.uri, results, timings)


def _use_services(tracking: Any, results_dir: Path) -> Any:
    """Point the run at the servers ``loom up`` started, where they run (see services).

    Prefect: unless ``PREFECT_API_URL`` names another server. MLflow: only where the run
    would write the local store that server serves (the default ``tracking``).
    """
    from framework import services

    alive = services.running(results_dir)
    if "prefect" in alive and not os.environ.get("PREFECT_API_URL"):
        os.environ["PREFECT_API_URL"] = services.prefect_api_url(alive["prefect"])
    db = sqlite_path(tracking.uri)
    ours = db is not None and db.resolve() == (results_dir / "mlflow.db").resolve()
    if "mlflow" in alive and tracking.kind == "mlflow_local" and ours:
        return tracking.model_copy(update={"uri": alive["mlflow"].url})
    return tracking


# What each running flow does, by invocation. The flow's function stays a plain module function:
# Prefect pickles the flow for process and Dask workers, and a closure would take the tracker,
# the progress display and their locks along.
_BODIES: dict[str, Callable[[], None]] = {}


def _flow_body(recipe: str, jobs_overrides: list[list[str]], invocation: str) -> None:
    """The flow: run invocation ``invocation`` (recipe and jobs: shown in the Prefect UI)."""
    from prefect.context import TagsContext

    del recipe, jobs_overrides
    # The recipe and scenario tags mark the flow run only. A tagged task run asks the API for
    # its tags' concurrency slots before it starts: about a second per stage on 2 busy cores.
    with TagsContext(current_tags=set()):
        _BODIES[invocation]()


def _flow_run_tags(standing: bool) -> dict[str, str]:
    """The flow run's id, and its page where the server outlives the run, for MLflow."""
    from prefect.runtime import flow_run

    tags = {"prefect.flow_run_id": str(flow_run.id)}
    url = flow_run.ui_url
    if standing and url:
        tags["prefect.flow_run_url"] = str(url)
    return tags


def _leave_artifacts(
    recipe: str,
    results: list[JobResult],
    names: dict[int, str],
    tracking_uri: str,
    experiment_id: str,
) -> None:
    """Each job's summary as a Prefect table artifact, and where its MLflow run is."""
    from prefect.artifacts import (
        create_link_artifact,
        create_markdown_artifact,
        create_table_artifact,
    )

    slug = re.sub(r"[^a-z0-9]+", "-", recipe.lower()).strip("-")
    for result in results:
        cfg = result.job.config
        pricing = getattr(cfg.groups.get("pricing"), "kind", None)
        shown = [*cfg.scenario.headline_metrics, *ACCOUNTING_METRICS]
        rows = [
            {
                "metric": m,
                "mean": result.metrics[m],
                "std": result.metrics.get(f"{m}_std", 0.0),
                "unit": metric_unit(m, pricing),
            }
            for m in dict.fromkeys(shown)
            if m in result.metrics
        ]
        key = f"{slug}-job-{result.job.index}"
        about = f"{recipe}: {names[result.job.index]} ({result.status})"
        if rows:
            create_table_artifact(rows, key=key, description=about)
        if result.run_id is None:
            continue
        if tracking_uri.startswith(("http://", "https://")):
            page = f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{result.run_id}"
            create_link_artifact(page, link_text=f"MLflow run: {about}", key=f"{key}-mlflow")
        else:
            create_markdown_artifact(
                f"MLflow run `{result.run_id}` of experiment `{recipe}` ({about}): "
                f"`mlflow ui --backend-store-uri {tracking_uri}`, or `loom up` for a "
                "server that later runs link to.",
                key=f"{key}-mlflow",
            )


class _LocalPrefectApi:
    """The invocation's one Prefect API server, booting while the flow's process sets up MLflow.

    Without a ``PREFECT_API_URL``, Prefect starts an ephemeral API server (a uvicorn process over
    a SQLite database) when its client first needs one, and then in every process that needs
    one: each worker would start its own (seconds of CPU each, on the cores the jobs need).
    Here one :class:`~framework.services.ThrowawayPrefect` serves the invocation: the CLI starts
    it before composing (``early``); otherwise it starts now, so its boot overlaps the MLflow
    import and store set-up. :meth:`settings` hands its address to the flow and, through the
    settings that travel with each task, to process and Dask workers. Remote workers cannot
    reach this machine's loopback: with a remote runner, Prefect's default stays.
    """

    def __init__(self, runner: Any, early: Any = None) -> None:
        from prefect.settings import PREFECT_API_URL

        from framework.services import ThrowawayPrefect, throwaway_prefect

        self._server: ThrowawayPrefect | None = None
        # A server someone else runs (loom up, PREFECT_API_URL): its pages outlive the run.
        self.standing = bool(PREFECT_API_URL.value())
        if runner.remote or self.standing:
            if early is not None:
                early.stop()
            return
        self._server = early or throwaway_prefect()

    @contextmanager
    def settings(self) -> Iterator[None]:
        """Wait for the server; run the block with ``PREFECT_API_URL`` set to it."""
        if self._server is None:
            yield
            return
        from prefect.settings import (
            PREFECT_API_URL,
            PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
            temporary_settings,
        )

        self._server.wait(float(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()))
        with temporary_settings(updates={PREFECT_API_URL: self._server.api_url}):
            yield


def _side_by_side(
    plans: list[JobPlan], runner: Any, slots: int, progress: Callable[[int], None]
) -> dict[int, JobResult]:
    """Run ``plans`` on the runner's task runner, ``slots`` at a time; their results by index.

    A job whose worker process dies breaks a process pool, and every job in it fails with
    ``BrokenProcessPool``. Those jobs run again, one at a time, on a fresh pool: the one that
    breaks it alone is the one that died, and only it fails.
    """
    from concurrent.futures.process import BrokenProcessPool

    from prefect.futures import as_completed

    done: dict[int, JobResult] = {}
    waiting = list(plans)
    alone: set[int] = set()  # suspects of a crash, run one at a time
    running: dict[Any, JobPlan] = {}
    pool: Any = None
    try:
        while waiting or running:
            if pool is None:
                pool = _open_pool(runner)
            while waiting and _may_start(waiting[0], list(running.values()), slots, alone):
                ready = waiting.pop(0)
                job_task = prefect_stage("job", f"job-{ready.job.index}", run_planned_job)
                running[pool.submit(job_task, {"sealed": Sealed(ready)})] = ready
            future = next(as_completed(list(running)))
            finished = running.pop(future)
            index = finished.job.index
            try:
                done[index] = future.result()
            except BrokenProcessPool as exc:
                if index in alone:  # it broke a pool of its own: it is the one that died
                    done[index] = JobResult(
                        finished.job,
                        "failed",
                        error=ErrorInfo(
                            "WorkerDied",
                            f"the job's worker process ended without a result ({exc})",
                            ErrorInfo.of(exc).traceback,
                        ),
                    )
                else:
                    alone.add(index)
                    waiting.insert(0, finished)
                if not running:  # the pool is dead: a fresh one for what is left
                    _close_pool(pool)
                    pool = None
            except Exception as exc:  # the worker itself failed (crashed, lost)
                done[index] = JobResult(finished.job, "failed", error=ErrorInfo.of(exc))
            progress(len(done))
    finally:
        if pool is not None:
            _close_pool(pool)
    return done


def _close_pool(pool: Any) -> None:
    """Leave the task runner; a message queue it could not close must not hold the exit.

    Prefect's process pool forwards its workers' messages through a queue. A worker killed
    while it wrote one leaves the reader waiting for the rest: the runner gives up on it
    after 5 s and leaves the queue open, and Python would then wait for its feeder thread
    at exit, for ever.
    """
    pool.__exit__(None, None, None)
    queue = getattr(pool, "_subprocess_message_queue", None)
    if queue is not None:
        queue.cancel_join_thread()


def _may_start(plan: JobPlan, running: list[JobPlan], slots: int, alone: set[int]) -> bool:
    """Whether ``plan`` may start beside ``running``: exclusive jobs and suspects run alone."""
    if plan.job.config.scenario.exclusive or plan.job.index in alone:
        return not running
    return len(running) < slots and not any(
        p.job.config.scenario.exclusive or p.job.index in alone for p in running
    )


def _open_pool(runner: Any) -> Any:
    """The runner's task runner, entered; a cluster that does not answer is named as such."""
    pool = task_runner(runner).__enter__()
    address = getattr(runner, "address", None)
    if address is None:
        return pool
    try:
        pool.client  # noqa: B018  # prefect-dask connects on first use: connect now
    except (OSError, TimeoutError) as exc:
        pool.__exit__(None, None, None)
        raise LoomError(
            f"runner.address={address}: no Dask scheduler answered "
            f"({type(exc).__name__}: {exc}); start one (`dask scheduler`, then `dask worker "
            f"{address}` on each machine), or drop runner.address for a local cluster"
        ) from None
    return pool


class Sealed:
    """A job plan as a task's parameter that Prefect does not look into.

    Prefect walks a task's parameters, in the flow's process and again in a worker's, and
    takes a pydantic model with a field named ``keys`` (``events.producers.keys``) for a
    mapping: the walk fails (``quote`` spares only the first), and in a process pool the job
    never starts. An object of a plain class is a leaf to it.
    """

    __slots__ = ("plan",)

    def __init__(self, plan: JobPlan) -> None:
        self.plan = plan


def run_planned_job(sealed: Sealed) -> JobResult:
    """A whole job where a task runner placed it: its own tracker; stages as nested tasks."""
    plan = sealed.plan
    config = plan.job.config
    quiet_mlflow(False)
    tracking = config.root.tracking
    if plan.tracking_uri is not None:
        tracking = tracking.model_copy(update={"uri": plan.tracking_uri})
    tracker = Tracker(tracking, Path(config.root.results_dir))
    return JobRunner(plan, tracker, None, prefect_stage).run()


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
