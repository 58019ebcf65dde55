"""The ``faults`` group: a seeded schedule of faults any run can carry.

``protocol.py`` holds the schedule's entries (:class:`Fault`), what a component that takes
faults implements (:class:`FaultSurface`) and the config base; ``run.py`` what ``build()``
returns; ``_injector`` the thread that injects and heals during a trial. Options: ``none``
(the default) and ``schedule``.
"""

from components.faults.protocol import (
    FAULT_KINDS,
    Fault,
    FaultKind,
    FaultsConfig,
    FaultSurface,
    Injected,
)
from components.faults.run import FaultSchedule

__all__ = [
    "FAULT_KINDS",
    "Fault",
    "FaultKind",
    "FaultSchedule",
    "FaultSurface",
    "FaultsConfig",
    "Injected",
]
