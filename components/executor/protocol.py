"""The ``executor`` group: its config base. What it builds is the runtime's ``LoomExecutor``."""

from __future__ import annotations

from components.base import ComponentConfig
from components.runtime.protocols import LoomExecutor

__all__ = ["ExecutorConfig", "LoomExecutor"]


class ExecutorConfig(ComponentConfig):
    """Base of executor configs."""

    def build(self) -> LoomExecutor:
        """Create the executor."""
        raise NotImplementedError
