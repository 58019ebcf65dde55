"""The ``energy`` group: meters that read each trial's energy (RAPL, pyJoules, a CPU-time model).

``protocol.py`` holds what ``build()`` returns, the config base and the errors; each option
has its module; modules starting with ``_`` are internals.
"""

from components.energy.protocol import EnergyMeter, EnergyReading, Measurement, NoMeter

__all__ = ["EnergyMeter", "EnergyReading", "Measurement", "NoMeter"]
