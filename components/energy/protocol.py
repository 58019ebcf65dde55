"""The ``energy`` group's contract: a meter measures one trial; a reading says what it used.

The engine starts a meter before a trial and stops it after (``meter.start()`` →
``measurement.stop()``). A reading carries the joules, whether they were **measured** (a
hardware counter) or **estimated** (a model), and what the pricing schemes need to charge them
(the machine profile and the grid's carbon intensity over the trial).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from components.base import ComponentConfig

Source = Literal["measured", "estimated", "none"]


@dataclass(frozen=True)
class EnergyReading:
    """What one trial used.

    Attributes:
        joules: Energy attributed to the run (dynamic + its share of idle power).
        source: ``measured`` (a counter), ``estimated`` (a model) or ``none`` (not metered).
        wall_s: Wall time of the trial.
        cpu_s: CPU seconds of the run's processes (0 when not counted).
        idle_j: The part of ``joules`` that is idle power.
        tdp_w: The machine's TDP (the pricing schemes' reservation term).
        share: The run's share of the machine (idle power and TDP are charged by it).
        carbon_intensity_g_per_kwh: The grid's mean carbon intensity over the trial.
        embodied_g_per_kwh: Embodied carbon charged per kWh (the prototype's rate).
        constants: What the estimate assumed, logged as params (``energy.watts_per_thread``).

    """

    joules: float
    source: Source
    wall_s: float
    cpu_s: float = 0.0
    idle_j: float = 0.0
    tdp_w: float = 0.0
    share: float = 1.0
    carbon_intensity_g_per_kwh: float = 0.0
    embodied_g_per_kwh: float = 0.0
    constants: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class Measurement(Protocol):
    """A meter that has started."""

    def stop(self) -> EnergyReading:
        """Stop measuring and return the reading."""


@runtime_checkable
class EnergyMeter(Protocol):
    """Measures the energy of one trial at a time."""

    def start(self) -> Measurement:
        """Start measuring now."""


class NoMeter:
    """``energy=none``: nothing is measured; readings say so."""

    def start(self) -> Measurement:
        """A measurement that only times the trial."""
        return _WallOnly()


class _WallOnly:
    def __init__(self) -> None:
        import time

        self._clock = time.perf_counter
        self._start = self._clock()

    def stop(self) -> EnergyReading:
        return EnergyReading(0.0, "none", self._clock() - self._start)


class EnergyConfig(ComponentConfig):
    """Base of the ``energy`` group's configs."""

    def build(self) -> EnergyMeter:
        """Create the meter."""
        raise NotImplementedError
