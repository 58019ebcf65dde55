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
from typing import Any

from colmena.models import Result
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
        super().__init__(queues=copy.copy(queues), method_names=list(self._methods))

    def _submit(self, task: Result, topic: str) -> Future[Any] | None:
        del topic
        if task.retries < task.max_retries:
            self._retry_inputs[task.task_id] = task.inputs  # serialized: the wrapper replaces it
        future: Future[Any] = self._executor.submit(self._methods[str(task.method)], task)
        return future

    def perform_callback(self, future: Future[Any], result: Result, topic: str) -> None:
        """Colmena's callback, with the inputs given back to a task that will be retried."""
        inputs = self._retry_inputs.pop(result.task_id, None)
        if inputs is not None:
            done = result if future.exception() is not None else future.result()
            if not done.success:
                done.inputs = inputs
        super().perform_callback(future, result, topic)

    def serve(self) -> None:
        """Start serving in a thread of this process (stop: the queues' kill signal)."""
        self._thread = threading.Thread(target=self.run, name="loom-colmena-server", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the serving thread to end (after the kill signal)."""
        if self._thread is not None:
            self._thread.join(timeout)
