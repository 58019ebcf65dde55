"""``energy=none``: measure nothing; charges are by time only."""

from __future__ import annotations

from typing import Literal

from components.energy.protocol import EnergyConfig, EnergyMeter, NoMeter


class NoEnergyConfig(EnergyConfig):
    """Measure nothing: readings say ``energy.source=none`` and charges are by time only."""

    kind: Literal["none"] = "none"

    def build(self) -> EnergyMeter:
        """The meter that measures nothing."""
        return NoMeter()
