"""The executor protocol: a ``concurrent.futures.Executor`` that knows its worker count."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from components.base import ComponentConfig


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


class ExecutorConfig(ComponentConfig):
    """Base of executor configs."""

    def build(self) -> LoomExecutor:
        """Create the executor."""
        raise NotImplementedError
