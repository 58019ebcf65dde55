"""The ``energy`` group's options: ``auto`` (default), ``rapl``, ``pyjoules``, ``model``, ``none``.

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

from components.base import ComponentConfig
from components.energy.carbon import CarbonSeries, CarbonSeriesError
from components.energy.model import ModelMeter
from components.energy.profiles import MachineProfile, ProfileName, profile
from components.energy.protocol import EnergyMeter, NoMeter
from components.energy.pyjoules_meter import PyJoulesMeter, PyJoulesUnavailable, pyjoules_devices
from components.energy.rapl import POWERCAP, RaplMeter, RaplUnavailable, find_zones

log = logging.getLogger(__name__)


class NoEnergyConfig(ComponentConfig):
    """Measure nothing: readings say ``energy.source=none`` and charges are by time only."""

    kind: Literal["none"] = "none"

    def build(self) -> EnergyMeter:
        """The meter that measures nothing."""
        return NoMeter()


class EnergyConfig(ComponentConfig):
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

    def build(self) -> EnergyMeter:
        """Create the meter."""
        raise NotImplementedError


def _constant(value: float, start: float, end: float) -> float:
    del start, end
    return value


class ModelEnergyConfig(EnergyConfig):
    """Estimate: CPU seconds of the run's processes × W per thread + its share of idle power."""

    kind: Literal["model"] = "model"

    def build(self) -> EnergyMeter:
        """The model meter."""
        return self.model_meter()


class _CounterConfig(EnergyConfig):
    fallback: Literal["model", "none"] = Field(
        "model", description="what to use where the counters cannot be read"
    )

    def _fallback(self, reason: str) -> EnergyMeter:
        log.warning("energy=%s: %s; falling back to energy=%s", self.kind, reason, self.fallback)
        return self.model_meter() if self.fallback == "model" else NoMeter()


class RaplEnergyConfig(_CounterConfig):
    """Measure: Linux powercap RAPL counters (package + DRAM), split by CPU-time share."""

    kind: Literal["rapl"] = "rapl"
    powercap: str = Field(str(POWERCAP), description="the powercap tree")
    sample_s: float = Field(5.0, gt=0, le=600, description="how often counters are read")

    def build(self) -> EnergyMeter:
        """The RAPL meter, or the fallback."""
        try:
            zones = find_zones(Path(self.powercap))
        except RaplUnavailable as exc:
            return self._fallback(str(exc))
        return RaplMeter(zones, self.model_meter(), self.sample_s)


class PyJoulesEnergyConfig(_CounterConfig):
    """Measure through pyJoules where it finds devices (guarded: it fails badly without)."""

    kind: Literal["pyjoules"] = "pyjoules"

    def build(self) -> EnergyMeter:
        """The pyJoules meter, or the fallback."""
        try:
            devices = pyjoules_devices()
        except PyJoulesUnavailable as exc:
            return self._fallback(str(exc))
        return PyJoulesMeter(devices, self.model_meter())


class AutoEnergyConfig(RaplEnergyConfig):
    """``rapl`` where the counters are readable, else ``model`` (the default)."""

    kind: Literal["auto"] = "auto"  # type: ignore[assignment]

    def build(self) -> EnergyMeter:
        """RAPL if readable, else the model, without a warning: that is the plan."""
        try:
            zones = find_zones(Path(self.powercap))
        except RaplUnavailable:
            return self.model_meter() if self.fallback == "model" else NoMeter()
        return RaplMeter(zones, self.model_meter(), self.sample_s)
