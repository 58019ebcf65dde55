"""``faults=none`` (the default): no faults."""

from __future__ import annotations

from typing import Literal

from components.faults.protocol import FaultsConfig
from components.faults.run import FaultSchedule


class NoFaultsConfig(FaultsConfig):
    """Inject nothing."""

    kind: Literal["none"] = "none"

    def build(self) -> FaultSchedule:
        """An empty schedule."""
        return FaultSchedule([])
