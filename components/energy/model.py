"""``energy=model``: CPU seconds of the run's processes × W per thread + a share of idle power.

The meter itself is :mod:`components.energy._model`'s ``ModelMeter``; every measuring option
falls back to it.
"""

from __future__ import annotations

from typing import Literal

from components.energy._measuring import MeasuringConfig
from components.energy.protocol import EnergyMeter


class ModelEnergyConfig(MeasuringConfig):
    """Estimate: CPU seconds of the run's processes × W per thread + its share of idle power."""

    kind: Literal["model"] = "model"

    def build(self) -> EnergyMeter:
        """The model meter."""
        return self.model_meter()
