"""The ``dataflow`` group: how task inputs and results travel between client and workers.

A data flow is opened for the job (it may start a server) and hands each task path a fresh
:class:`~components.runtime.protocols.DataMover`, or None to pass everything by value. At the end
of a trial, :meth:`DataFlow.stored` counts what is left in the store: the leak check.
"""

from __future__ import annotations

from typing import Protocol, Self, runtime_checkable

from components.base import ComponentConfig
from components.runtime.protocols import DataMovers


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
