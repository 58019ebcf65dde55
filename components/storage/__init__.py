"""The ``storage`` group: the data containers behind the erasure-coded storage fabric.

``protocol.py`` holds what ``build()`` returns (a :class:`StorageNetwork`), the config base,
the errors and the tenants' :class:`ObjectStore`; each option (``local``, ``memory``, ``s3``,
``mixed``) has its module; ``_network`` is the network they all build. ``fabric`` is the
storage fabric (:class:`~components.storage.fabric.StorageFabric`) a scenario joins it into.
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
    StorageConfig,
    StorageError,
    StorageNetwork,
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
    "StorageConfig",
    "StorageError",
    "StorageNetwork",
]
