"""A Colmena task server backed by a Loom executor (thread, process or Dask).

Colmena's ``LocalTaskServer`` owns a thread or process pool in a child process. Loom's server
hands every task to the ``executor`` group's executor instead, so a campaign scales onto a Dask
cluster by override, and it runs in a thread of the engine's process: Prefect's and MLflow's
threads make ``fork`` unsafe, and the executor is already open there. The queues are Colmena's;
the server uses its own shallow copy so the thinker's copy keeps the client role. Results come
back from several pool threads at once: use queues that lock their pipes (``queues.py``).

Colmena's method wrapper stamps every timestamp (created, input received, compute started and
ended, result sent and received) and its ``perform_callback`` retries a failed task up to the
task's ``max_retries``; both are used as they are.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Collection
from concurrent.futures import Future
from typing import Any, cast

from colmena.models import Result, SerializationMethod
from colmena.queue.base import ColmenaQueues
from colmena.task_server.base import FutureBasedTaskServer, convert_to_colmena_method

from components.runtime.protocols import LoomExecutor


class ExecutorTaskServer(FutureBasedTaskServer):
    """Serves Colmena task requests on a Loom executor.

    Args:
        queues: The campaign's queues (the server takes a copy in the server role).
        methods: The functions tasks may name (importable top-level functions for process and
            Dask executors).
        executor: Where tasks run; opened and closed by its owner.

    """

    def __init__(
        self,
        queues: ColmenaQueues,
        methods: Collection[Callable[..., Any]],
        executor: LoomExecutor,
    ) -> None:
        self._methods = {m.name: m for m in map(convert_to_colmena_method, methods)}
        self._executor = executor
        self._thread: threading.Thread | None = None
        self._retry_inputs: dict[str, Any] = {}
        self._kept: dict[str, list[Any]] = {}  # task → input proxies kept for its retries
        super().__init__(queues=copy.copy(queues), method_names=list(self._methods))

    def _submit(self, task: Result, topic: str) -> Future[Any] | None:
        del topic
        if task.retries < task.max_retries:
            if task.task_id not in self._kept:  # its first attempt
                task.inputs, self._kept[task.task_id] = _kept_proxies(task)
            self._retry_inputs[task.task_id] = task.inputs  # serialized: the wrapper replaces it
        future: Future[Any] = self._executor.submit(self._methods[str(task.method)], task)
        return future

    def perform_callback(self, future: Future[Any], result: Result, topic: str) -> None:
        """Colmena's callback, with the inputs given back to a task that will be retried."""
        inputs = self._retry_inputs.pop(result.task_id, None)
        done = result if future.exception() is not None else future.result()
        retried = not done.success and done.retries < done.max_retries
        if inputs is not None and not done.success:
            done.inputs = inputs
        if not retried:  # its last attempt: the inputs kept for retries can go
            for proxy in self._kept.pop(result.task_id, []):
                _evict(proxy)
        super().perform_callback(future, result, topic)

    def serve(self) -> None:
        """Start serving in a thread of this process (stop: the queues' kill signal)."""
        self._thread = threading.Thread(target=self.run, name="loom-colmena-server", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the serving thread to end (after the kill signal)."""
        if self._thread is not None:
            self._thread.join(timeout)


def _kept_proxies(task: Result) -> tuple[Any, list[Any]]:
    """The task's serialized inputs with every proxy kept after it is read, and those proxies.

    Colmena proxies an input with ``evict=True``: the first attempt to resolve it deletes the
    object, and every retry then fails to find it. A task that may be retried keeps its inputs
    until its last attempt ends (:func:`_evict`).
    """
    from proxystore.proxy import Proxy, get_factory

    method = task.serialization_method
    args, kwargs = cast(tuple[tuple[Any, ...], dict[str, Any]], task.inputs)
    kept: list[Any] = []

    def keep(value: str) -> str:
        if not isinstance(value, str):
            return value
        try:
            obj = SerializationMethod.deserialize(method, value)
        except Exception:  # not a serialized value of this method: leave it as it is
            return value
        if not isinstance(obj, Proxy):
            return value
        factory: Any = get_factory(obj)
        if not getattr(factory, "evict", False):
            return value
        factory.evict = False
        kept.append(obj)
        return SerializationMethod.serialize(method, obj)

    return (tuple(keep(a) for a in args), {k: keep(v) for k, v in kwargs.items()}), kept


def _evict(proxy: Any) -> None:
    """Delete a kept input's object from its store (it may already be gone)."""
    from proxystore.proxy import get_factory

    factory: Any = get_factory(proxy)
    try:
        factory.get_store().evict(factory.key)
    except Exception:  # a store closed at the end of the run has nothing left to evict
        return
