"""Process-pool executor: true parallelism on one machine; arguments are pickled.

A worker that dies (killed, out of memory) breaks a ``ProcessPoolExecutor`` for good: every
attempt in flight fails and nothing more can be submitted. This pool starts a fresh one
instead, and fails the attempts the dead worker took down with :class:`WorkerLost`, naming
the worker and its signal, so the task path re-runs them and the records say why.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ClassVar, Literal, Self

from pydantic import Field

from components.executor.protocol import ExecutorConfig, LoomExecutor, signal_workers
from components.faults.protocol import Fault, Injected
from components.runtime.protocols import WorkerLost


def _signal_name(exitcode: int | None) -> str:
    if exitcode is None or exitcode >= 0:
        return f"exit code {exitcode}"
    try:
        return signal.Signals(-exitcode).name
    except ValueError:
        return f"signal {-exitcode}"


class ProcessExecutor(Executor):
    """A process pool that reports its worker count and outlives the death of a worker.

    Args:
        max_workers: Worker processes.
        start_method: ``spawn`` or ``forkserver``.

    """

    def __init__(self, max_workers: int, start_method: str) -> None:
        self.workers = max_workers
        self._context = multiprocessing.get_context(start_method)
        self._lock = threading.Lock()
        self._pool = self._new_pool()
        self.pools_started = 1
        self.lost: list[str] = []  # what broke each pool, in order
        self._injected: dict[int, str] = {}  # pid → the fault that hit it
        self._causes: dict[int, str] = {}  # id of a broken pool → what broke it
        # id of a pool → every worker it started: a pool spawns workers as tasks arrive, so
        # the snapshot taken when one attempt was submitted may not hold the one that died.
        self._started: dict[int, dict[int, Any]] = {}

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=self._context)

    def _pids(self) -> list[int]:
        processes: dict[int, Any] = getattr(self._pool, "_processes", None) or {}
        return sorted(processes)

    def _started_by(self, pool: ProcessPoolExecutor) -> dict[int, Any]:
        """Under the lock: the workers ``pool`` started so far (kept after it broke)."""
        started = self._started.setdefault(id(pool), {})
        started.update(getattr(pool, "_processes", None) or {})
        return started

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Schedule ``fn`` on a worker; a broken pool is replaced first."""
        with self._lock:
            pool = self._pool
            try:
                inner = pool.submit(fn, *args, **kwargs)
            except BrokenProcessPool:
                self._replace(pool)
                pool = self._pool
                inner = pool.submit(fn, *args, **kwargs)
            processes = self._started_by(pool)
        outer: Future[Any] = Future()
        inner.add_done_callback(lambda f: self._settle(f, outer, pool, processes))
        return outer

    def _settle(
        self, inner: Future[Any], outer: Future[Any], pool: Any, processes: dict[int, Any]
    ) -> None:
        if inner.cancelled():
            outer.cancel()
            outer.set_running_or_notify_cancel()
            return
        exc = inner.exception()
        if isinstance(exc, BrokenProcessPool):
            with self._lock:
                cause = self._causes.get(id(pool))
                started = dict(processes)
            if cause is None:  # once per broken pool: every attempt it held fails with it
                cause = self._cause(started)
                with self._lock:
                    cause = self._causes.setdefault(id(pool), cause)
                    if self._pool is pool:
                        self._replace(pool, cause)
            outer.set_exception(WorkerLost(cause))
        elif exc is not None:
            outer.set_exception(exc)
        else:
            outer.set_result(inner.result())

    def _cause(self, processes: dict[int, Any]) -> str:
        """Which worker died and how (the first one that did not exit cleanly)."""
        dead = []
        for pid, process in processes.items():
            code = process.exitcode
            if code is not None and code != 0 and code != -signal.SIGTERM:
                fault = self._injected.get(pid)
                dead.append(
                    f"worker process pid {pid} died ({_signal_name(code)})"
                    + (f", injected by the faults group: {fault}" if fault else "")
                )
        return "; ".join(dead) or "a worker process died abruptly"

    def _replace(self, pool: ProcessPoolExecutor, cause: str = "") -> None:
        """Under the lock: the broken ``pool`` gives way to a fresh one."""
        if self._pool is not pool:
            return
        self.lost.append(cause or "a worker process died abruptly")
        self._started.pop(id(pool), None)
        pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()
        self.pools_started += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the workers."""
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)

    def __enter__(self) -> Self:
        return self

    # -- faults --------------------------------------------------------------------------------
    def fault_targets(self, kind: str) -> list[str]:
        """Worker pids for ``worker_kill`` and ``process_pause``."""
        if kind not in ProcessExecutorConfig.fault_kinds:
            return []
        with self._lock:
            self._started_by(self._pool)
            return [f"worker-{pid}" for pid in self._pids()]

    def inject(self, kind: str, targets: Sequence[str], fault: Fault) -> Injected:
        """SIGKILL the targets, or SIGSTOP them until healed (SIGCONT)."""
        pids = [int(t.removeprefix("worker-")) for t in targets]
        if kind == "worker_kill":
            self._injected.update(dict.fromkeys(pids, "worker_kill"))
        return signal_workers(kind, pids, f"pid {', '.join(map(str, pids))}")


class ProcessExecutorConfig(ExecutorConfig):
    """Pool of worker processes on this machine."""

    kind: Literal["process"] = "process"
    workers_field: ClassVar[str | None] = "max_workers"
    fault_kinds: ClassVar[frozenset[str]] = frozenset({"worker_kill", "process_pause"})
    max_workers: int = Field(2, ge=1, le=512, description="number of worker processes")
    # fork is unsafe once Prefect's and MLflow's threads run in the parent.
    start_method: Literal["spawn", "forkserver"] = Field(
        "forkserver", description="how worker processes start (fork is unsafe with threads)"
    )

    def pool(self, site: str | None) -> LoomExecutor:
        """Create the process pool."""
        del site  # its workers are processes of their own
        return ProcessExecutor(self.max_workers, self.start_method)
