"""``energy=auto`` (the default): ``rapl`` where the counters are readable, else ``model``."""

from __future__ import annotations

from typing import Literal

from components.energy._measuring import RaplCounterConfig
from components.energy._rapl import RaplUnavailable
from components.energy.protocol import EnergyMeter, NoMeter


class AutoEnergyConfig(RaplCounterConfig):
    """``rapl`` where the counters are readable, else ``model`` (the default)."""

    kind: Literal["auto"] = "auto"

    def build(self) -> EnergyMeter:
        """RAPL if readable, else the model, without a warning: that is the plan."""
        try:
            return self.rapl_meter()
        except RaplUnavailable:
            return self.model_meter() if self.fallback == "model" else NoMeter()
