"""The ``task_placement`` group: energy-aware placement of tasks over endpoints.

``protocol.py`` holds what ``build()`` returns, the config base and the errors; each option
has its module; modules starting with ``_`` are internals.
"""

from components.task_placement.protocol import (
    Endpoints,
    Executed,
    Placement,
    Problem,
    ProfileCell,
    Site,
    TaskPlacementConfig,
    TaskPlacer,
    Workload,
)

__all__ = [
    "Endpoints",
    "Executed",
    "Placement",
    "Problem",
    "ProfileCell",
    "Site",
    "TaskPlacementConfig",
    "TaskPlacer",
    "Workload",
]
