"""``energy=model``: an estimate where no counter exists (this machine, CI, most VMs).

E = CPU seconds of the run's processes × watts per busy thread
  + idle power × wall time × the run's share of the machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from components.energy._cpu import ProcessTreeCpu
from components.energy.profiles import MachineProfile
from components.energy.protocol import EnergyReading, Source

# Wall time → the grid's mean intensity over [start, end] (Unix seconds).
IntensityOver = Callable[[float, float], float]


class ModelMeter:
    """Estimates energy from CPU time with a machine profile.

    Args:
        machine: Threads, powers and carbon rates.
        share: The run's share of the machine's idle power and TDP (1: it has the machine).
        intensity: The grid's mean carbon intensity over an interval.

    """

    def __init__(self, machine: MachineProfile, share: float, intensity: IntensityOver) -> None:
        self.machine, self.share, self.intensity = machine, share, intensity

    @property
    def watts_per_thread(self) -> float:
        """Dynamic power of one busy thread (per-task energy)."""
        return self.machine.watts_per_thread

    def constants(self) -> dict[str, str]:
        """What the estimate assumes (logged as params)."""
        m = self.machine
        return {
            "energy.assumed.profile": m.name,
            "energy.assumed.cpu_model": m.cpu_model or "-",
            "energy.assumed.threads": str(m.cores),
            "energy.assumed.watts_per_thread": f"{m.watts_per_thread:g}",
            "energy.assumed.idle_w": f"{m.idle_w:g}",
            "energy.assumed.tdp_w": f"{m.tdp_w:g}",
            "energy.assumed.share": f"{self.share:g}",
        }

    def start(self) -> _ModelMeasurement:
        """Start counting CPU time now."""
        return _ModelMeasurement(self)

    def reading(
        self,
        joules: float,
        source: Source,
        wall_s: float,
        cpu_s: float,
        idle_j: float,
        start: float,
        end: float,
        constants: dict[str, str],
    ) -> EnergyReading:
        """A reading with this meter's machine, share and grid."""
        return EnergyReading(
            joules=joules,
            source=source,
            wall_s=wall_s,
            cpu_s=cpu_s,
            idle_j=idle_j,
            tdp_w=self.machine.tdp_w,
            share=self.share,
            carbon_intensity_g_per_kwh=self.intensity(start, end),
            embodied_g_per_kwh=self.machine.embodied_g_per_kwh,
            constants=constants,
        )


class _ModelMeasurement:
    def __init__(self, meter: ModelMeter) -> None:
        self.meter = meter
        self.cpu = ProcessTreeCpu()
        self.started = time.time()
        self.clock = time.perf_counter()

    def stop(self) -> EnergyReading:
        wall = time.perf_counter() - self.clock
        cpu = self.cpu.seconds()
        machine, share = self.meter.machine, self.meter.share
        idle = machine.idle_w * wall * share
        joules = cpu * machine.watts_per_thread + idle
        return self.meter.reading(
            joules,
            "estimated",
            wall,
            cpu,
            idle,
            self.started,
            self.started + wall,
            self.meter.constants(),
        )
