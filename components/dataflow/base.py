"""The ``dataflow`` group: how task inputs and results travel between client and workers.

A data flow is opened for the job (it may start a server) and hands each task path a fresh
:class:`~components.executors.base.DataMover`, or None to pass everything by value. At the end
of a trial, :meth:`DataFlow.stored` counts what is left in the store: the leak check.
"""

from __future__ import annotations

from typing import Literal, Protocol, Self, runtime_checkable

from components.base import ComponentConfig
from components.runtime.protocols import DataMover, DataMovers


@runtime_checkable
class DataFlow(DataMovers, Protocol):
    """What the engine opens for the ``dataflow`` group (task scenarios see :class:`DataMovers`)."""

    def __enter__(self) -> Self:
        """Start what the flow needs."""

    def __exit__(self, *exc_info: object) -> None:
        """Stop it."""


class DataFlowConfig(ComponentConfig):
    """Base of data-flow configs."""

    def build(self) -> DataFlow:
        """Create the data flow."""
        raise NotImplementedError


class ByValue:
    """Every value travels inside the task, as the executor serializes it."""

    name = "by_value"

    def mover(self) -> DataMover | None:
        """No mover: the task path passes values as they are."""
        return None

    def stored(self) -> tuple[int, int]:
        """Nothing is ever stored."""
        return 0, 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


class ByValueConfig(DataFlowConfig):
    """Pass inputs and results by value (the executor's own serialization)."""

    kind: Literal["by_value"] = "by_value"

    def build(self) -> DataFlow:
        """Create the data flow."""
        return ByValue()
