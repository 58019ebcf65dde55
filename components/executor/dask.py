"""Dask executor: a local cluster by default, or any existing cluster by address.

On the local cluster Loom starts, Dask does not re-run a task whose worker died
(``allowed-failures: 0``): the attempt fails with :class:`WorkerLost`, naming the worker, and
Loom's task path re-runs it, counted and with its cause in the records. Dask's own re-run is
invisible to the client, so ``tasks_retried`` stayed 0 while a killed worker's result was
computed twice. An existing cluster (``address=``) keeps its own settings.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, model_validator

from components.executor.protocol import ExecutorConfig, LoomExecutor, signal_workers
from components.faults.protocol import Fault, Injected
from components.runtime.protocols import WorkerLost


class DaskExecutor(Executor):
    """``concurrent.futures`` interface over a ``distributed.Client``."""

    def __init__(self, config: DaskExecutorConfig) -> None:
        import dask
        from distributed import Client, LocalCluster

        self._cluster: LocalCluster | None = None
        self._injected: list[str] = []  # the worker faults injected, for WorkerLost's message
        if config.address is None:
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                self._cluster = LocalCluster(
                    n_workers=config.n_workers or 2,
                    threads_per_worker=config.threads_per_worker or 1,
                    processes=True if config.processes is None else config.processes,
                    dashboard_address=None,
                    host="127.0.0.1",
                )
            address: Any = self._cluster
        else:
            address = config.address
        try:
            self._client = Client(address, timeout=f"{config.connect_timeout_s}s")
        except OSError as exc:
            if self._cluster is not None:
                self._cluster.close()
            raise ConnectionError(
                f"executor.address={config.address}: no Dask scheduler answered within "
                f"{config.connect_timeout_s} s ({exc})"
            ) from None
        self._executor = self._client.get_executor(pure=False)
        threads = self._client.nthreads()
        self.workers = max(1, sum(threads.values()))

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` (for comparisons against Dask's own API)."""
        return self._client

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Schedule ``fn`` on the cluster; an attempt lost with its worker is a WorkerLost."""
        inner: Future[Any] = self._executor.submit(fn, *args, **kwargs)
        outer: Future[Any] = Future()
        inner.add_done_callback(lambda f: self._settle(f, outer))
        return outer

    def _settle(self, inner: Future[Any], outer: Future[Any]) -> None:
        if inner.cancelled():
            outer.cancel()
            outer.set_running_or_notify_cancel()
            return
        exc = inner.exception()
        if exc is None:
            outer.set_result(inner.result())
        elif type(exc).__name__ == "KilledWorker":
            fault = "; ".join(self._injected)
            last = getattr(exc, "last_worker", None)
            where = getattr(last, "address", last) or "?"
            outer.set_exception(
                WorkerLost(
                    f"Dask worker {where} died while running this attempt"
                    + (f"; injected by the faults group: {fault}" if fault else "")
                )
            )
        else:
            outer.set_exception(exc)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Close the client, and the local cluster if this executor started it."""
        del cancel_futures
        self._executor.shutdown(wait=wait)
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self) -> Self:
        return self

    # -- faults (the local cluster's workers) -------------------------------------------------

    def _worker_pids(self) -> dict[str, int]:
        pids: dict[str, int] = self._client.run(os.getpid)
        return pids

    def fault_targets(self, kind: str) -> list[str]:
        """Worker addresses for ``worker_kill`` and ``process_pause`` (local cluster only)."""
        if self._cluster is None or kind not in DaskExecutorConfig.fault_kinds:
            return []
        return sorted(self._worker_pids())

    def inject(self, kind: str, targets: Sequence[str], fault: Fault) -> Injected:
        """SIGKILL the targets' processes (their nannies start new ones), or SIGSTOP them."""
        pids = self._worker_pids()
        chosen = [pids[t] for t in targets if t in pids]
        what = f"pid {', '.join(map(str, chosen))} ({', '.join(targets)})"
        if kind == "worker_kill":
            self._injected = [*self._injected, f"worker_kill SIGKILL {what}"]
        return signal_workers(kind, chosen, what)


class DaskExecutorConfig(ExecutorConfig):
    """Dask distributed: a LocalCluster, or an existing cluster at ``address``."""

    kind: Literal["dask"] = "dask"
    workers_field: ClassVar[str | None] = "n_workers"
    fault_kinds: ClassVar[frozenset[str]] = frozenset({"worker_kill", "process_pause"})
    address: str | None = Field(
        None,
        description="scheduler address (tcp://host:8786) of an existing cluster; "
        "null starts a LocalCluster",
    )
    n_workers: int | None = Field(None, ge=1, le=256, description="local workers (default 2)")
    threads_per_worker: int | None = Field(
        None, ge=1, le=256, description="threads per local worker (default 1)"
    )
    processes: bool | None = Field(
        None, description="local workers as processes (default true) or threads"
    )
    connect_timeout_s: float = Field(10.0, gt=0, le=600, description="time to reach the scheduler")

    @model_validator(mode="after")
    def _local_options_need_local_cluster(self) -> DaskExecutorConfig:
        local = {
            "n_workers": self.n_workers,
            "threads_per_worker": self.threads_per_worker,
            "processes": self.processes,
        }
        given = [name for name, value in local.items() if value is not None]
        if self.address is not None and given:
            raise ValueError(
                f"address={self.address} connects to an existing cluster, so "
                f"{', '.join(given)} (which shape a local cluster) cannot be set with it"
            )
        return self

    def places_at_sites(self) -> bool:
        """A local cluster per site; an existing cluster (``address``) stays one pool."""
        return self.address is None and super().places_at_sites()

    def takes_faults(self) -> frozenset[str]:
        """Worker faults on the local cluster Loom starts (with worker processes) only."""
        if self.address is not None or self.processes is False:
            return frozenset()
        return self.fault_kinds

    def pool(self, site: str | None) -> LoomExecutor:
        """Start or connect to the cluster."""
        del site  # a cluster per site: its workers' addresses tell them apart
        executor: LoomExecutor = DaskExecutor(self)
        return executor
