"""``energy=rapl``: Linux powercap RAPL counters (package + DRAM), split by CPU-time share."""

from __future__ import annotations

from typing import Literal

from components.energy._measuring import RaplCounterConfig
from components.energy._rapl import RaplUnavailable
from components.energy.protocol import EnergyMeter


class RaplEnergyConfig(RaplCounterConfig):
    """Measure: Linux powercap RAPL counters (package + DRAM), split by CPU-time share."""

    kind: Literal["rapl"] = "rapl"

    def build(self) -> EnergyMeter:
        """The RAPL meter, or the fallback."""
        try:
            return self.rapl_meter()
        except RaplUnavailable as exc:
            return self.fallback_meter(str(exc))
