"""The ``storage`` group: the data containers behind the erasure-coded storage fabric.

``protocol.py`` holds what ``build()`` returns, the config base and the errors; each option
has its module; modules starting with ``_`` are internals.
"""

from components.storage.protocol import (
    AccessDenied,
    ContainerDown,
    InsufficientCapacity,
    InvalidKey,
    ObjectNotFound,
    ObjectStat,
    ObjectStore,
    ObjectUnreadable,
    StorageError,
)

__all__ = [
    "AccessDenied",
    "ContainerDown",
    "InsufficientCapacity",
    "InvalidKey",
    "ObjectNotFound",
    "ObjectStat",
    "ObjectStore",
    "ObjectUnreadable",
    "StorageError",
]
