"""The ``executor`` group: its config base. What it builds is the runtime's ``LoomExecutor``."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Sequence

from components.base import ComponentConfig
from components.faults.protocol import Injected
from components.runtime.protocols import LoomExecutor

__all__ = ["ExecutorConfig", "LoomExecutor", "signal_workers"]


def signal_workers(kind: str, pids: Sequence[int], what: str) -> Injected:
    """``worker_kill``: SIGKILL ``pids``; ``process_pause``: SIGSTOP them, healed by SIGCONT."""

    def send(number: signal.Signals) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):  # already gone
                os.kill(pid, number)

    if kind == "worker_kill":
        send(signal.SIGKILL)
        return Injected(f"SIGKILL {what}")
    send(signal.SIGSTOP)
    return Injected(f"SIGSTOP {what}", lambda: send(signal.SIGCONT))


class ExecutorConfig(ComponentConfig):
    """Base of executor configs."""

    def build(self) -> LoomExecutor:
        """Create the executor."""
        raise NotImplementedError
