"""A ProxyStore connector over Loom's storage fabric: proxies that survive container losses.

Objects are cut into segments, erasure-coded and spread over the data containers (any fsspec
URLs), with their metadata in a SQLite catalog that every process opens. ProxyStore rebuilds a
connector on each worker from :meth:`StorageFabricConnector.config`, which therefore returns exactly
the constructor's arguments, all JSON: container specs, the coder's and placer's config
classes by dotted path with their fields, and the catalog's path.

A worker joining the catalog does not collect garbage (other processes' writes in flight would
look like strays), and a container it cannot open is taken down rather than failing the
connector: reads then rebuild from the other chunks.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from components.coding.protocol import Coder
from components.placement.protocol import Placer
from components.storage.container import ContainerSpec, DataContainer
from components.storage.fabric import StorageFabric
from components.storage.protocol import InsufficientCapacity, ObjectNotFound, StorageError

log = logging.getLogger(__name__)

CATALOG = "proxystore"
DEFAULT_CODING: tuple[str, dict[str, Any]] = ("components.coding.zfec.ZfecConfig", {"k": 2, "m": 3})
DEFAULT_PLACEMENT: tuple[str, dict[str, Any]] = (
    "components.placement.round_robin.RoundRobinConfig",
    {},
)


class FabricKey(NamedTuple):
    """Key of one object in the fabric's ``proxystore`` catalog."""

    fabric_key: str


def _component(spec: Sequence[Any]) -> Any:
    """Build a component from ``[dotted path of its config class, its fields]``."""
    path, fields = spec
    module, _, name = str(path).rpartition(".")
    config_type = getattr(importlib.import_module(module), name)
    return config_type.model_validate(dict(fields)).build()


class StorageFabricConnector:
    """Byte-level ProxyStore connector (write once, read many) over an erasure-coded fabric.

    Args:
        containers: Container specs (``ContainerSpec`` fields: url, name, capacity_mb, ...).
        catalog_path: SQLite catalog shared by every process of the run.
        coding: ``[config class path, fields]`` of the coder (default zfec k=2, m=3).
        placement: ``[config class path, fields]`` of the placer (default round robin).
        segment_size: Bytes per segment.
        parallelism: Segments in flight per put or get.
        owner: Whether this process created the catalog (it alone collects garbage).

    """

    def __init__(
        self,
        containers: list[dict[str, Any]],
        catalog_path: str,
        coding: Sequence[Any] | None = None,
        placement: Sequence[Any] | None = None,
        segment_size: int = 8 * 2**20,
        parallelism: int = 4,
        owner: bool = False,
    ) -> None:
        self._args: dict[str, Any] = {
            "containers": [dict(c) for c in containers],
            "catalog_path": catalog_path,
            "coding": list(coding or DEFAULT_CODING),
            "placement": list(placement or DEFAULT_PLACEMENT),
            "segment_size": segment_size,
            "parallelism": parallelism,
            "owner": False,
        }
        coder: Coder = _component(self._args["coding"])
        placer: Placer = _component(self._args["placement"])
        opened = []
        for node_id, raw in enumerate(containers):
            container = DataContainer(ContainerSpec.model_validate(raw), node_id)
            try:
                opened.append(container.open())
            except StorageError as exc:
                log.warning(
                    "fabric connector: %s is down (%s); reads rebuild without it",
                    container.name,
                    exc,
                )
                container.take_down()
                opened.append(container)
        self.fabric = StorageFabric(
            opened,
            coder,
            placer,
            Path(catalog_path),
            segment_size=segment_size,
            parallelism=parallelism,
            collect_garbage=owner,
        )

    def __repr__(self) -> str:
        return f"StorageFabricConnector(catalog_path={self._args['catalog_path']!r})"

    def close(self) -> None:
        """Stop the fabric's pools and close the catalog (the objects stay)."""
        self.fabric.close()

    def config(self) -> dict[str, Any]:
        """The constructor's arguments: ProxyStore rebuilds the connector from them."""
        return dict(self._args)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> StorageFabricConnector:
        """Rebuild from :meth:`config`."""
        return cls(**config)

    def new_key(self, obj: bytes | bytearray | memoryview | None = None) -> FabricKey:
        """A key for an object to be :meth:`set` later (futures).

        ``obj`` is ignored, as ProxyStore's own connectors ignore it: a new key holds nothing
        until :meth:`set` (ProxyStore's ``DeferrableConnector`` contract).
        """
        del obj
        return FabricKey(uuid.uuid4().hex)

    def set(self, key: FabricKey, obj: bytes | bytearray | memoryview) -> None:
        """Store ``obj`` under ``key``.

        Each process counts only its own writes and deletes against the containers'
        capacity; when the count says full, the containers are measured again, once.
        """
        try:
            self.fabric.put(CATALOG, key.fabric_key, obj)
        except InsufficientCapacity:
            for container in self.fabric.containers:
                if container.up:
                    container.remeasure()
            self.fabric.put(CATALOG, key.fabric_key, obj)

    def put(self, obj: bytes | bytearray | memoryview) -> FabricKey:
        """Store ``obj`` under a new key."""
        key = self.new_key()
        self.set(key, obj)
        return key

    def put_batch(self, objs: Sequence[bytes | bytearray | memoryview]) -> list[FabricKey]:
        """Store each object under a new key."""
        return [self.put(obj) for obj in objs]

    def get(self, key: FabricKey) -> bytes | None:
        """The object, or None where there is none."""
        try:
            return self.fabric.get(CATALOG, key.fabric_key)
        except ObjectNotFound:
            return None

    def get_batch(self, keys: Sequence[FabricKey]) -> list[bytes | None]:
        """Each key's object, or None."""
        return [self.get(key) for key in keys]

    def exists(self, key: FabricKey) -> bool:
        """Whether the object is stored."""
        return self.fabric.exists(CATALOG, key.fabric_key)

    def evict(self, key: FabricKey) -> None:
        """Delete the object (no error where it is already gone)."""
        with contextlib.suppress(ObjectNotFound):
            self.fabric.delete(CATALOG, key.fabric_key)

    def stored(self) -> tuple[int, int]:
        """Objects and bytes stored now, as the catalog lists them (the leak check)."""
        keys = self.fabric.catalog.keys(CATALOG, "")
        return len(keys), sum(self.fabric.stat(CATALOG, k).size for k in keys)
