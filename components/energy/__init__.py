"""The ``energy`` group: meters that read each trial's energy (RAPL, pyJoules, a CPU-time model).

``protocol.py`` holds what ``build()`` returns and the config base; each option (``auto``,
``rapl``, ``pyjoules``, ``model``, ``none``) has its module; ``_measuring`` is what the
measuring options share, ``_model`` the CPU-time meter they fall back to. ``profiles`` are the
machines (the green-access prototype's four endpoints, and this one) and ``carbon_series``
the grids' intensity over time: other areas read both.
"""

from components.energy.protocol import (
    EnergyConfig,
    EnergyMeter,
    EnergyReading,
    Measurement,
    NoMeter,
)

__all__ = ["EnergyConfig", "EnergyMeter", "EnergyReading", "Measurement", "NoMeter"]
