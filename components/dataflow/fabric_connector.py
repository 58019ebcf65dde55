"""A ProxyStore connector over Loom's storage fabric: proxies that survive container losses.

Objects are cut into segments, erasure-coded and spread over the data containers (any fsspec
URLs), with their metadata in a SQLite catalog that every process opens. ProxyStore rebuilds a
connector on each worker from :meth:`StorageFabricConnector.config`, which therefore returns exactly
the constructor's arguments, all JSON: container specs, the coder's and placer's config
classes by dotted path with their fields, and the catalog's path. A run builds them from its
``storage``, ``coding`` and ``placement`` groups (:class:`~components.dataflow._connectors.
FabricConnector`).

What the fabric counts (degraded reads, failed chunk writes, stripes that lost redundancy,
containers down, the bytes moved to and from each container) is added to the catalog's
shared counters by every process, so that the run's metrics hold what its workers met too
(:meth:`StorageFabricConnector.counts`).

A worker joining the catalog does not collect garbage (other processes' writes in flight would
look like strays), and a container it cannot open is taken down rather than failing the
connector: reads then rebuild from the other chunks.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Sequence
from dataclasses import astuple, fields
from pathlib import Path
from typing import Any, NamedTuple

from components.base import from_dotted_name
from components.coding.protocol import Coder
from components.placement.protocol import Placer
from components.storage.container import ContainerSpec, DataContainer
from components.storage.fabric import FabricCounters, StorageFabric
from components.storage.protocol import InsufficientCapacity, ObjectNotFound, StorageError

log = logging.getLogger(__name__)

CATALOG = "proxystore"
MOVED = "moved:"  # shared counter of the bytes moved to and from a container, by its name
_COUNTED = tuple(f.name for f in fields(FabricCounters))


class FabricKey(NamedTuple):
    """Key of one object in the fabric's ``proxystore`` catalog."""

    fabric_key: str


def _component(spec: Sequence[Any]) -> Any:
    """Build a component from ``[dotted path of its config class, its fields]``."""
    path, settings = spec
    return from_dotted_name(str(path)).model_validate(dict(settings)).build()


class StorageFabricConnector:
    """Byte-level ProxyStore connector (write once, read many) over an erasure-coded fabric.

    Args:
        containers: Container specs (``ContainerSpec`` fields: url, name, capacity_mb, ...).
        catalog_path: SQLite catalog shared by every process of the run.
        coding: ``[config class path, fields]`` of the coder.
        placement: ``[config class path, fields]`` of the placer.
        segment_size: Bytes per segment.
        parallelism: Segments in flight per put or get.
        share_containers: Let two chunks of a stripe share a container when too few are up.
        owner: Whether this process created the catalog (it alone collects garbage).

    """

    def __init__(
        self,
        containers: list[dict[str, Any]],
        catalog_path: str,
        coding: Sequence[Any],
        placement: Sequence[Any],
        segment_size: int = 8 * 2**20,
        parallelism: int = 4,
        share_containers: bool = False,
        owner: bool = False,
    ) -> None:
        self._args: dict[str, Any] = {
            "containers": [dict(c) for c in containers],
            "catalog_path": catalog_path,
            "coding": list(coding),
            "placement": list(placement),
            "segment_size": segment_size,
            "parallelism": parallelism,
            "share_containers": share_containers,
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
                # The error names the container: "container de-c0 is down: ...".
                log.warning("fabric connector: %s; reads rebuild without it", exc)
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
            share_containers=share_containers,
        )
        self._flushed = FabricCounters()
        self._down_flushed: set[str] = set()
        self._moved_flushed: dict[str, int] = {}
        self._flush_lock = threading.Lock()
        self._flush_counts()  # containers found down on opening

    def __repr__(self) -> str:
        return f"StorageFabricConnector(catalog_path={self._args['catalog_path']!r})"

    def close(self) -> None:
        """Stop the fabric's pools and close the catalog (the objects stay)."""
        self._flush_counts()
        self.fabric.close()

    def _flush_counts(self) -> None:
        """Add what this process counted since the last flush to the catalog's counters."""
        with self._flush_lock:
            now = astuple(self.fabric.counters)
            deltas = {
                name: new - old
                for name, new, old in zip(_COUNTED, now, astuple(self._flushed), strict=True)
                if new != old
            }
            down = {c.name for c in self.fabric.containers if not c.up} - self._down_flushed
            deltas.update({f"down:{name}": 1 for name in down})
            moved = {c.name: c.bytes_moved for c in self.fabric.containers}
            deltas.update(
                {
                    f"{MOVED}{name}": n - self._moved_flushed.get(name, 0)
                    for name, n in moved.items()
                    if n != self._moved_flushed.get(name, 0)
                }
            )
            if deltas:  # one small transaction after a put or get that moved bytes
                self.fabric.catalog.add_counts(deltas)
                self._flushed = FabricCounters(*now)
                self._down_flushed |= down
                self._moved_flushed = moved

    def counts(self) -> dict[str, int]:
        """What every process using this catalog counted: the fabric's counters, by name.

        ``containers_down`` is how many containers some process found down.
        """
        self._flush_counts()
        shared = self.fabric.catalog.counts()
        out = {name: shared.get(name, 0) for name in _COUNTED}
        out["containers_down"] = sum(1 for name in shared if name.startswith("down:"))
        out["bytes_moved"] = sum(n for name, n in shared.items() if name.startswith(MOVED))
        return out

    def bytes_moved(self) -> dict[str, int]:
        """Bytes every process moved to and from each container (over its link), by name."""
        self._flush_counts()
        shared = self.fabric.catalog.counts()
        return {c.name: shared.get(f"{MOVED}{c.name}", 0) for c in self.fabric.containers}

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
        finally:
            self._flush_counts()

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
        finally:
            self._flush_counts()

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

    def keys(self) -> list[FabricKey]:
        """The key of every object stored now, as the catalog lists them."""
        return [FabricKey(key) for key in self.fabric.catalog.keys(CATALOG, "")]

    def stored(self) -> tuple[int, int]:
        """Objects and bytes stored now, as the catalog lists them (the leak check)."""
        keys = self.fabric.catalog.keys(CATALOG, "")
        return len(keys), sum(self.fabric.stat(CATALOG, k).size for k in keys)
