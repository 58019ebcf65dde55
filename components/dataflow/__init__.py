"""The ``dataflow`` group: how task inputs and results travel (by value, or as ProxyStore proxies).

``protocol.py`` holds what ``build()`` returns, the config base and the errors; each option
has its module; modules starting with ``_`` are internals.
"""

from components.dataflow.protocol import DataFlow, DataFlowConfig

__all__ = ["DataFlow", "DataFlowConfig"]
