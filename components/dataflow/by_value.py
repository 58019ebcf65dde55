"""``dataflow=by_value``: every value travels inside its task (the default)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Self

from components.dataflow.protocol import DataFlow, DataFlowConfig
from components.runtime.protocols import DataMover


class ByValue:
    """Every value travels inside the task, as the executor serializes it."""

    name = "by_value"

    def mover(self, by_reference: Sequence[str] = ()) -> DataMover | None:
        """No mover: the task path passes values as they are."""
        del by_reference
        return None

    def stored(self) -> tuple[int, int]:
        """Nothing is ever stored."""
        return 0, 0

    def store_metrics(self) -> dict[str, float]:
        """No store, nothing counted."""
        return {}

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
