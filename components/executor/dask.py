"""Dask executor: a local cluster by default, or any existing cluster by address."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, Literal, Self

from pydantic import Field, model_validator

from components.executor.protocol import ExecutorConfig, LoomExecutor


class DaskExecutor(Executor):
    """``concurrent.futures`` interface over a ``distributed.Client``."""

    def __init__(self, config: DaskExecutorConfig) -> None:
        from distributed import Client, LocalCluster

        self._cluster: LocalCluster | None = None
        if config.address is None:
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
        """Schedule ``fn`` on the cluster."""
        future: Future[Any] = self._executor.submit(fn, *args, **kwargs)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Close the client, and the local cluster if this executor started it."""
        del cancel_futures
        self._executor.shutdown(wait=wait)
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self) -> Self:
        return self


class DaskExecutorConfig(ExecutorConfig):
    """Dask distributed: a LocalCluster, or an existing cluster at ``address``."""

    kind: Literal["dask"] = "dask"
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

    def build(self) -> LoomExecutor:
        """Start or connect to the cluster."""
        executor: LoomExecutor = DaskExecutor(self)
        return executor
