"""The ``endpoints`` group: heterogeneous compute endpoints, simulated or live.

``protocol.py`` holds what ``build()`` returns, the config base and the result types; each
option has its module (``simulated``, ``live``); modules starting with ``_`` are internals.
``greenfaas`` is the authors' published setting (endpoints, profiles, figures), which the
``simulated`` option uses by default and reports compare against.
"""

from components.endpoints import _greenfaas as greenfaas
from components.endpoints._predictors import relative_error
from components.endpoints.protocol import (
    Endpoints,
    EndpointsConfig,
    Executed,
    FloatArray,
    IntArray,
    ProfileCell,
    Site,
    TaskPlacement,
    Workload,
)

__all__ = [
    "Endpoints",
    "EndpointsConfig",
    "Executed",
    "FloatArray",
    "IntArray",
    "ProfileCell",
    "Site",
    "TaskPlacement",
    "Workload",
    "greenfaas",
    "relative_error",
]
