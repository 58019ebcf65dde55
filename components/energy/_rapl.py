"""``energy=rapl``: Linux powercap counters (``/sys/class/powercap/intel-rapl:*``).

Package zones (``intel-rapl:N``, named ``package-N``) and their DRAM sub-zones
(``intel-rapl:N:M`` named ``dram``) count microjoules up to ``max_energy_range_uj`` and wrap.
A sampler thread reads them often enough to see every wrap. The counters are package-wide, so
a run is charged its share of them by CPU time: its processes' CPU seconds over the machine's.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from components.energy._cpu import ProcessTreeCpu
from components.energy._model import ModelMeter
from components.energy.protocol import EnergyReading

POWERCAP = Path("/sys/class/powercap")


class RaplUnavailable(RuntimeError):
    """No readable RAPL counter on this machine; the message says why."""


@dataclass(frozen=True)
class Zone:
    """One counter."""

    name: str
    energy_file: Path
    max_uj: int

    def read(self) -> int:
        """The counter now (µJ)."""
        return int(self.energy_file.read_text(encoding="ascii").strip())


def find_zones(root: Path = POWERCAP) -> list[Zone]:
    """The package and DRAM counters under ``root``, checked readable.

    Raises:
        RaplUnavailable: no powercap tree, no such zones, or counters that cannot be read
            (root-only since Linux 5.10).

    """
    if not root.is_dir():
        raise RaplUnavailable(f"{root} does not exist (no RAPL on this machine or VM)")
    zones = []
    for folder in sorted(root.glob("intel-rapl:*")):
        parts = folder.name.split(":")
        try:
            name = (folder / "name").read_text(encoding="ascii").strip()
        except OSError:
            continue
        top_level_package = len(parts) == 2 and name.startswith("package")
        dram = len(parts) == 3 and name == "dram"
        if not (top_level_package or dram):
            continue  # core/uncore are inside the package; psys overlaps it
        try:
            max_uj = int((folder / "max_energy_range_uj").read_text(encoding="ascii"))
            zone = Zone(f"{folder.name}:{name}", folder / "energy_uj", max_uj)
            zone.read()
        except PermissionError:
            raise RaplUnavailable(
                f"{folder / 'energy_uj'} is not readable (root-only since Linux 5.10; "
                "grant read access or use energy=model)"
            ) from None
        except (OSError, ValueError) as exc:
            raise RaplUnavailable(f"{folder}: unreadable counter ({exc})") from None
        zones.append(zone)
    if not zones:
        raise RaplUnavailable(f"{root} has no package or dram RAPL zone")
    return zones


class CounterSum:
    """Energy over all zones since construction, counting each wrap-around once."""

    def __init__(self, zones: list[Zone]) -> None:
        self.zones = zones
        self._last = [z.read() for z in zones]
        self.microjoules = 0
        self._lock = threading.Lock()

    def sample(self) -> int:
        """Fold in the counters' progress since the last sample; return the total (µJ)."""
        with self._lock:
            for i, zone in enumerate(self.zones):
                now = zone.read()
                step = now - self._last[i]
                if step < 0:  # wrapped (once: we sample well within a wrap period)
                    step += zone.max_uj
                self.microjoules += step
                self._last[i] = now
            return self.microjoules


def _machine_busy_seconds() -> float:
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    return float(sum(times)) - float(idle)


class RaplMeter:
    """Measures with RAPL; charges the run its CPU-time share of the package energy.

    Args:
        zones: The counters (from :func:`find_zones`).
        model: The model meter, for the machine profile and grid of the readings.
        sample_s: How often the sampler reads the counters (a counter wraps in minutes).

    """

    def __init__(self, zones: list[Zone], model: ModelMeter, sample_s: float) -> None:
        self.zones, self.model, self.sample_s = zones, model, sample_s

    @property
    def watts_per_thread(self) -> float:
        """Dynamic power of one busy thread, from the profile (per-task estimates)."""
        return self.model.watts_per_thread

    def start(self) -> _RaplMeasurement:
        """Start counting now."""
        return _RaplMeasurement(self)


class _RaplMeasurement:
    def __init__(self, meter: RaplMeter) -> None:
        self.meter = meter
        self.counters = CounterSum(meter.zones)
        self.cpu = ProcessTreeCpu()
        self.busy = _machine_busy_seconds()
        self.started = time.time()
        self.clock = time.perf_counter()
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._run, name="loom-rapl", daemon=True)
        self._sampler.start()

    def _run(self) -> None:
        while not self._done.wait(self.meter.sample_s):
            self.counters.sample()

    def stop(self) -> EnergyReading:
        self._done.set()
        self._sampler.join()
        package_j = self.counters.sample() / 1e6
        wall = time.perf_counter() - self.clock
        cpu = self.cpu.seconds()
        busy = _machine_busy_seconds() - self.busy
        share = min(1.0, cpu / busy) if busy > 0 else 1.0
        model = self.meter.model
        constants = {"energy.assumed.zones": ",".join(z.name for z in self.meter.zones)}
        return model.reading(
            package_j * share,
            "measured",
            wall,
            cpu,
            0.0,
            self.started,
            self.started + wall,
            constants,
        )
