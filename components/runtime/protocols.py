"""What the task path runs on and plugs into: the executor, and the movers of task data.

The ``executor`` group builds a :class:`LoomExecutor`; the ``dataflow`` group builds the
:class:`DataMovers`. Both live here, below the groups, so that the task path they serve
imports no group.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable


class WorkerLost(RuntimeError):
    """An attempt was lost with the worker that ran or held it (killed, crashed, gone).

    Executors raise it in place of their own breakage errors, naming the worker and how it
    died; the task path re-runs such attempts (they were not the task's fault) and records why.
    """


@runtime_checkable
class LoomExecutor(Protocol):
    """What the engine opens for the ``executor`` group.

    Any ``concurrent.futures.Executor`` with a ``workers`` attribute (the number of tasks it
    runs at once, used for the ideal schedule) fits.
    """

    workers: int

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Schedule ``fn(*args, **kwargs)`` and return its future."""

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Release the workers."""

    def __enter__(self) -> Self:
        """Open the executor."""

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        """Close the executor."""


class WorkerHook(Protocol):
    """Runs a task attempt on the worker with its data moved (picklable; sent with the task).

    It resolves the proxies among the arguments before the task body sees them (C-implemented
    APIs such as ``hashlib`` reject proxies), calls the task, proxies a large result, and
    reports what moving the data cost.
    """

    def __call__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, dict[str, Any]]:
        """Return ``(value, movement record)``."""


@runtime_checkable
class DataMover(Protocol):
    """How a task path's inputs and results travel; the ``dataflow`` group implements it.

    The path calls it on the client: :meth:`send` before the first attempt of a task, with the
    arguments its parents' values filled in; :meth:`retain` when a task's value has ``count``
    more consumers; :meth:`release` once per input when a consumer finished, whatever its
    outcome; :meth:`discard` when the path closes. A value is freed when its last consumer
    released it, or at :meth:`discard` if it never had one (the caller may still read it
    until then).
    """

    worker: WorkerHook | None
    orphans_evicted: int  # values workers stored that no result carried back, freed at discard

    def send(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """The arguments to ship: large values become references, each held for this task."""

    def retain(self, value: Any, count: int) -> None:
        """A value (a result, or an argument) has ``count`` more consumers."""

    def release(self, value: Any) -> None:
        """One consumer of ``value`` finished."""

    def discard(self) -> None:
        """Free every value still held."""


@runtime_checkable
class DataMovers(Protocol):
    """What a task scenario asks of the ``dataflow`` group: a mover per path, a leak check."""

    name: str

    def mover(self, by_reference: Sequence[str] = ()) -> DataMover | None:
        """A data mover for one task path (None: by value).

        Args:
            by_reference: Types (``module.qualname``) a by-reference flow always moves by
                reference, whatever their size (a scenario's own data, such as FL's updates).

        """

    def stored(self) -> tuple[int, int]:
        """Keys and bytes in the store now (after the paths closed: what leaked)."""

    def store_metrics(self) -> dict[str, float]:
        """What the store itself counted, as metrics (the fabric's degraded reads, ...)."""
