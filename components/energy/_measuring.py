"""What the measuring ``energy`` options share: the machine, the grid, the run's share.

Every option but ``none`` names a machine profile (the four endpoints of the green-access
prototype, or ``local``: this machine) whose values can be overridden key by key, and the grid's
carbon intensity: the profile's, a constant, or a CSV series. A meter that cannot measure here
falls back (``fallback=model`` or ``none``) with one log line.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from components.energy._model import ModelMeter
from components.energy._rapl import POWERCAP, RaplMeter, find_zones
from components.energy.carbon_series import CarbonSeries, CarbonSeriesError
from components.energy.profiles import MachineProfile, ProfileName, profile
from components.energy.protocol import EnergyConfig, EnergyMeter, NoMeter

log = logging.getLogger(__name__)


class MeasuringConfig(EnergyConfig):
    """What every measuring option shares: the machine, the grid, the run's share."""

    profile: ProfileName = Field("local", description="machine profile")
    watts_per_thread: float | None = Field(
        None, gt=0, description="dynamic power of a busy thread (W; default: the profile's)"
    )
    idle_w: float | None = Field(None, ge=0, description="idle power (W; default: the profile's)")
    tdp_w: float | None = Field(None, gt=0, description="TDP of the node (W; default: profile's)")
    embodied_g_per_kwh: float | None = Field(
        None, ge=0, description="embodied carbon per kWh (default: the profile's)"
    )
    carbon_intensity: float | str | None = Field(
        None,
        description="grid intensity: gCO2e/kWh, or a CSV of timestamp,g_per_kwh "
        "(default: the profile's)",
    )
    share: float = Field(
        1.0, gt=0, le=1, description="the run's share of the machine (idle power and TDP)"
    )

    @field_validator("carbon_intensity")
    @classmethod
    def _check_intensity(cls, value: float | str | None) -> float | str | None:
        if isinstance(value, float | int) and not value >= 0:
            raise ValueError("must be ≥ 0 gCO2e/kWh, or a CSV path")
        if isinstance(value, str):
            try:
                CarbonSeries.read(Path(value).expanduser())
            except CarbonSeriesError as exc:
                raise ValueError(str(exc)) from None
        return value

    def machine(self) -> MachineProfile:
        """The profile with this config's overrides."""
        base = profile(self.profile)
        changes = {
            key: value
            for key in ("watts_per_thread", "idle_w", "tdp_w", "embodied_g_per_kwh")
            if (value := getattr(self, key)) is not None
        }
        if isinstance(self.carbon_intensity, float | int):
            changes["carbon_intensity_g_per_kwh"] = float(self.carbon_intensity)
        return base.model_copy(update=changes)

    def model_meter(self) -> ModelMeter:
        """The CPU-time model with this machine and grid."""
        machine = self.machine()
        if isinstance(self.carbon_intensity, str):
            series = CarbonSeries.read(Path(self.carbon_intensity).expanduser())
            return ModelMeter(machine, self.share, series.mean)
        return ModelMeter(
            machine, self.share, partial(_constant, machine.carbon_intensity_g_per_kwh)
        )


def _constant(value: float, start: float, end: float) -> float:
    del start, end
    return value


class CounterConfig(MeasuringConfig):
    """A meter that reads hardware counters, and what it falls back to where it cannot."""

    fallback: Literal["model", "none"] = Field(
        "model", description="what to use where the counters cannot be read"
    )

    def fallback_meter(self, reason: str) -> EnergyMeter:
        log.warning("energy=%s: %s; falling back to energy=%s", self.kind, reason, self.fallback)
        return self.model_meter() if self.fallback == "model" else NoMeter()


class RaplCounterConfig(CounterConfig):
    """The RAPL counters' settings (``rapl``, and ``auto`` where they are readable)."""

    powercap: str = Field(str(POWERCAP), description="the powercap tree")
    sample_s: float = Field(5.0, gt=0, le=600, description="how often counters are read")

    def rapl_meter(self) -> RaplMeter:
        """The RAPL meter over this tree's zones (raises :class:`RaplUnavailable`)."""
        return RaplMeter(find_zones(Path(self.powercap)), self.model_meter(), self.sample_s)
