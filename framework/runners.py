"""Where an invocation's jobs run: one after another, or side by side on a Prefect task runner.

``runner=sequential`` (default) runs each job in the flow's process, as before. ``threads`` and
``processes`` run jobs on Prefect's ``ThreadPoolTaskRunner`` / ``ProcessPoolTaskRunner``;
``dask`` on prefect-dask's ``DaskTaskRunner``: a ``LocalCluster`` of ``workers`` one-thread worker
processes, or an existing cluster at ``address``. Each job is one Prefect task that runs the
whole job (``framework.job``) where it lands; its stages are nested task runs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field

from components.base import LoomModel


class _Runner(LoomModel):
    max_jobs: int | None = Field(
        None, ge=1, le=4096, description="at most this many jobs at once (default: workers)"
    )

    @property
    def capacity(self) -> int:
        """How many jobs the runner can run at once."""
        return 1

    @property
    def slots(self) -> int:
        """How many jobs run at once: the capacity, capped by ``max_jobs``."""
        return min(self.capacity, self.max_jobs or self.capacity)

    @property
    def shares_a_process(self) -> bool:
        """Whether jobs that run at once share one process (their CPU times would mix)."""
        return False

    @property
    def remote(self) -> bool:
        """Whether jobs may run on other machines."""
        return False


class SequentialRunner(_Runner):
    """One job after another in the flow's process (default)."""

    kind: Literal["sequential"] = "sequential"


class ThreadsRunner(_Runner):
    """Jobs on threads of the flow's process (Prefect's ThreadPoolTaskRunner)."""

    kind: Literal["threads"] = "threads"
    workers: int = Field(2, ge=1, le=256, description="threads, one job each")

    @property
    def capacity(self) -> int:
        """Threads."""
        return self.workers

    @property
    def shares_a_process(self) -> bool:
        """Jobs on threads share the flow's process."""
        return self.slots > 1


class ProcessesRunner(_Runner):
    """Jobs in worker processes on this machine (Prefect's ProcessPoolTaskRunner)."""

    kind: Literal["processes"] = "processes"
    workers: int = Field(2, ge=1, le=256, description="worker processes, one job each")

    @property
    def capacity(self) -> int:
        """Worker processes."""
        return self.workers


class DaskRunner(_Runner):
    """Jobs on a Dask cluster: a local one, or an existing one by address (prefect-dask)."""

    kind: Literal["dask"] = "dask"
    workers: int = Field(2, ge=1, le=4096, description="local cluster: worker processes")
    address: str | None = Field(
        None,
        pattern=r"^(tcp|tls|ucx|inproc)://\S+$",
        description="scheduler of an existing cluster (tcp://host:8786); none: a local one",
    )

    @property
    def capacity(self) -> int:
        """Local workers, or ``max_jobs`` (else unbounded) on an existing cluster."""
        return self.workers if self.address is None else (self.max_jobs or 4096)

    @property
    def remote(self) -> bool:
        """Whether the cluster's scheduler is on another machine (its workers may be too)."""
        if self.address is None:
            return False
        host = urlsplit(self.address).hostname or ""
        return host not in ("localhost", "127.0.0.1", "::1") and not host.startswith("127.")


RunnerConfig = Annotated[
    SequentialRunner | ThreadsRunner | ProcessesRunner | DaskRunner, Field(discriminator="kind")
]
RUNNER_OPTIONS: dict[str, type[LoomModel]] = {
    "sequential": SequentialRunner,
    "threads": ThreadsRunner,
    "processes": ProcessesRunner,
    "dask": DaskRunner,
}


def task_runner(config: _Runner) -> Any:
    """The Prefect task runner of ``config`` (None: jobs run in the flow, one by one)."""
    if isinstance(config, ThreadsRunner):
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=config.workers)
    if isinstance(config, ProcessesRunner):
        from prefect.task_runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(max_workers=config.workers)
    if isinstance(config, DaskRunner):
        from prefect_dask.task_runners import DaskTaskRunner

        if config.address is not None:
            return DaskTaskRunner(address=config.address)
        # One thread per worker process: a job's CPU time is its worker's (energy accounting).
        # A job that kills its worker fails at once (Dask's default retries it on 3 more).
        options = {
            "n_workers": config.workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
            "scheduler_kwargs": {"allowed_failures": 0},
        }
        return _all_workers_first(DaskTaskRunner)(cluster_kwargs=options)
    return None


def _all_workers_first(base: type[Any]) -> type[Any]:
    """``base`` (prefect-dask's runner) that waits for a local cluster's workers to start.

    Workers start one by one; tasks submitted meanwhile all queue on the first, so two jobs
    meant to run side by side would run one after the other.
    """

    class AllWorkersFirst(base):  # type: ignore[misc]
        def submit(self, *args: Any, **kwargs: Any) -> Any:
            if not getattr(self, "_workers_ready", False):
                wanted = int((self.cluster_kwargs or {}).get("n_workers", 1))
                self.client.wait_for_workers(wanted, timeout=120)
                self._workers_ready = True
            return super().submit(*args, **kwargs)

    return AllWorkersFirst
