"""The ``task_placement`` group: energy-aware placement of tasks over the ``endpoints``.

``protocol.py`` holds what ``build()`` returns and the config base; each option has its
module; modules starting with ``_`` are internals. A placement is the ``endpoints`` group's
:class:`~components.endpoints.protocol.TaskPlacement`: the endpoints run it.
"""

from components.endpoints.protocol import TaskPlacement
from components.task_placement.protocol import Problem, TaskPlacementConfig, TaskPlacer

__all__ = ["Problem", "TaskPlacement", "TaskPlacementConfig", "TaskPlacer"]
