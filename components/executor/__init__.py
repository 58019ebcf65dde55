"""The ``executor`` group: the pools a scenario's tasks run on (threads, processes, Dask).

``protocol.py`` holds what ``build()`` returns, the config base and the errors; each option
has its module; modules starting with ``_`` are internals.
"""

from components.executor.protocol import ExecutorConfig

__all__ = ["ExecutorConfig"]
