"""``energy=pyjoules``: pyJoules' RAPL/NVML devices, guarded against its failure modes.

pyJoules 0.5.1 without devices finds none and raises nothing at construction, then raises
``TypeError`` (``reduce() of empty iterable``) when the measurement ends, losing the result;
an explicit domain raises ``NoSuchDeviceError`` at construction; a root-only counter raises
``PermissionError`` when read. Here: no devices means no pyJoules meter (the caller falls
back), and a failure while measuring falls back to the model estimate taken alongside.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from typing import Any, Literal

from components.energy._measuring import CounterConfig
from components.energy._model import ModelMeter
from components.energy.protocol import EnergyMeter, EnergyReading

log = logging.getLogger(__name__)


class PyJoulesUnavailable(RuntimeError):
    """pyJoules is missing or finds no device; the message says which."""


def pyjoules_devices() -> list[Any]:
    """PyJoules' devices on this machine.

    Raises:
        PyJoulesUnavailable: pyJoules is not installed, or it finds no device.

    """
    quiet = io.StringIO()
    # pyJoules prints, and logs on the root logger, that pynvml is missing: not our news.
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            from pyJoules.device import DeviceFactory

            devices = list(DeviceFactory.create_devices())
    except ImportError:
        raise PyJoulesUnavailable("pyJoules is not installed (pip install pyJoules)") from None
    except Exception as exc:  # NoSuchDeviceError, PermissionError, ...
        raise PyJoulesUnavailable(f"pyJoules found no device ({type(exc).__name__})") from None
    finally:
        logging.disable(logging.NOTSET)
    if not devices:
        raise PyJoulesUnavailable("pyJoules found no RAPL or NVIDIA device on this machine")
    return devices


class PyJoulesMeter:
    """Measures with pyJoules' devices.

    Args:
        devices: From :func:`pyjoules_devices`.
        model: Measures alongside, for the profile, the grid, and as the fallback.

    """

    def __init__(self, devices: list[Any], model: ModelMeter) -> None:
        self.devices, self.model = devices, model

    @property
    def watts_per_thread(self) -> float:
        """Dynamic power of one busy thread, from the profile (per-task estimates)."""
        return self.model.watts_per_thread

    def start(self) -> _PyJoulesMeasurement:
        """Start measuring now."""
        return _PyJoulesMeasurement(self)


class _PyJoulesMeasurement:
    def __init__(self, meter: PyJoulesMeter) -> None:
        from pyJoules.energy_meter import EnergyMeter

        self.meter = meter
        self.fallback = meter.model.start()
        self.started = time.time()
        self.clock = time.perf_counter()
        self.pyjoules: Any = None
        try:
            self.pyjoules = EnergyMeter(meter.devices)
            self.pyjoules.start(tag="trial")
        except Exception as exc:
            log.warning(
                "pyJoules could not start (%s: %s); using the model estimate",
                type(exc).__name__,
                exc,
            )
            self.pyjoules = None

    def stop(self) -> EnergyReading:
        estimate = self.fallback.stop()
        if self.pyjoules is None:
            return estimate
        try:
            self.pyjoules.stop()
            samples = list(self.pyjoules.get_trace())
            microjoules = sum(sum(s.energy.values()) for s in samples)
        except Exception as exc:
            log.warning(
                "pyJoules failed while measuring (%s: %s); using the model estimate",
                type(exc).__name__,
                exc,
            )
            return estimate
        wall = time.perf_counter() - self.clock
        return self.meter.model.reading(
            microjoules / 1e6,
            "measured",
            wall,
            estimate.cpu_s,
            0.0,
            self.started,
            self.started + wall,
            {"energy.assumed.pyjoules_devices": str(len(self.meter.devices))},
        )


class PyJoulesEnergyConfig(CounterConfig):
    """Measure through pyJoules where it finds devices (guarded: it fails badly without)."""

    kind: Literal["pyjoules"] = "pyjoules"

    def build(self) -> EnergyMeter:
        """The pyJoules meter, or the fallback."""
        try:
            devices = pyjoules_devices()
        except PyJoulesUnavailable as exc:
            return self.fallback_meter(str(exc))
        return PyJoulesMeter(devices, self.model_meter())
