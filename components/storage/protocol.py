"""The ``storage`` area's contracts: errors, object metadata, the network, the config base.

Every option builds a :class:`StorageNetwork` (opened containers plus the fabric settings); a
scenario joins it with the ``coding`` and ``placement`` components into a
:class:`~components.storage.fabric.StorageFabric` whose catalog lives in the trial's folder.
Tenants read and write through the :class:`ObjectStore` protocol.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, ClassVar, Protocol, Self, runtime_checkable

from pydantic import Field, PrivateAttr, SecretStr

from components.base import ComponentConfig
from components.sites import site_container

if TYPE_CHECKING:  # the network's parts, for types only (they import this module's errors)
    from components.coding.protocol import Coder
    from components.placement.protocol import Placer
    from components.storage.container import ContainerSpec, DataContainer, LinkSpec
    from components.storage.fabric import StorageFabric

DEFAULT_TENANT = "loom"

PutSource = bytes | bytearray | memoryview | BinaryIO | Path


class StorageError(RuntimeError):
    """Base of storage failures; the message is meant for people."""


class InvalidKey(StorageError, ValueError):
    """A key that could address something outside its container, or is malformed."""


class ObjectNotFound(StorageError, KeyError):
    """No visible object under that key."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "object not found"


class AccessDenied(StorageError, PermissionError):
    """Wrong token, or a catalog of another tenant."""


class ContainerDown(StorageError):
    """The container was taken down or does not answer."""


class InsufficientCapacity(StorageError):
    """The object (with its redundancy) does not fit in the free capacity."""


class ObjectUnreadable(StorageError):
    """Fewer than k good chunks of some segment are left: beyond the code's tolerance."""


@dataclass(frozen=True)
class ObjectStat:
    """What the catalog knows of one object.

    Attributes:
        catalog: Catalog name.
        key: Object key.
        size: Bytes.
        coding: Coder label, e.g. ``zfec(4,6)``.
        k: Chunks needed per segment.
        m: Chunks stored per segment.
        segment_size: Bytes per segment (the last may be shorter).
        hash: xxh3-128 of the whole object.
        placement: Per segment, the container holding each chunk index.
        chunk_hashes: Per segment, the xxh3-64 of each chunk index.

    """

    catalog: str
    key: str
    size: int
    coding: str
    k: int
    m: int
    segment_size: int
    hash: str
    placement: list[list[str]] = field(default_factory=list)
    chunk_hashes: list[list[str]] = field(default_factory=list)


@runtime_checkable
class ObjectStore(Protocol):
    """A tenant's view of the storage fabric: objects in named catalogs."""

    def put(
        self, catalog: str, key: str, source: PutSource, *, reliability: float | None = None
    ) -> ObjectStat:
        """Store bytes, a binary file object or a file path; visible once fully durable.

        ``reliability`` is the object's durability target for placers that choose (n, k).
        """

    def get(self, catalog: str, key: str) -> bytes:
        """Read a whole object (checked against its hash)."""

    def get_stream(self, catalog: str, key: str) -> Iterator[bytes]:
        """Read an object segment by segment, with bounded memory."""

    def exists(self, catalog: str, key: str) -> bool:
        """Whether a visible object has this key."""

    def delete(self, catalog: str, key: str) -> None:
        """Remove an object and its chunks."""

    def list(self, catalog: str, prefix: str = "") -> list[str]:
        """Keys in a catalog starting with ``prefix``, sorted."""

    def stat(self, catalog: str, key: str) -> ObjectStat:
        """Size, coding, placement and hashes of an object."""


@runtime_checkable
class StorageNetwork(Protocol):
    """What the ``storage`` group gives a scenario: data containers, opened as a context."""

    specs: list[ContainerSpec]
    containers: list[DataContainer]
    segment_size: int
    parallelism: int
    tenants: dict[str, str]
    share_containers: bool

    def __enter__(self) -> Self:
        """Open every container."""

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Remove in-memory containers and temporary folders."""

    def fabric(self, coder: Coder, placer: Placer, catalog_path: Path) -> StorageFabric:
        """A fabric over these containers with its catalog at ``catalog_path``."""


class StorageConfig(ComponentConfig):
    """Settings shared by every storage option."""

    fault_kinds: ClassVar[frozenset[str]] = frozenset(
        {"container_down", "container_slow", "container_corrupt"}
    )

    def takes_faults(self) -> frozenset[str]:
        """The container faults; the link faults too where some container has a link."""
        declared = getattr(self, "containers", None)
        each = declared if isinstance(declared, list) else []
        links = (
            getattr(self, "link", None) is not None
            or any(getattr(c, "link", None) is not None for c in each)
            or any(link is not None for _, _, link in self._sites or ())
        )
        return self.fault_kinds | ({"link_slow", "link_partition"} if links else frozenset())

    segment_size_mb: float = Field(8.0, gt=0, le=1024, description="bytes per segment, MB")
    parallelism: int = Field(4, ge=1, le=64, description="segments in flight per put/get")
    tenants: dict[str, SecretStr] = Field(
        default_factory=lambda: {DEFAULT_TENANT: SecretStr("loom-dev-token")},
        description="tenant → token (LOOM_TOKEN_<TENANT> in the environment overrides)",
    )
    afr_pct: float | None = Field(
        None,
        ge=0,
        le=100,
        description="annual failure rate of every container, % (mixed: of those declaring "
        "none); reliability placers (drex_lb, ...) need one on each",
    )
    share_containers: bool = Field(
        False,
        description="let one container hold two chunks of a stripe when too few are up "
        "(counted as redundancy_lost); otherwise that write is refused, that repair left undone",
    )

    # Where :meth:`at_sites` put the containers: (site, containers, its link) each.
    _sites: tuple[tuple[str, int, LinkSpec | None], ...] | None = PrivateAttr(None)
    # Whether the option counts its containers (``containers: <n>``), so sites can hold them.
    places_at_sites: ClassVar[bool] = False

    def at_sites(self, layout: Sequence[tuple[str, int, LinkSpec | None]]) -> Self:
        """A copy whose containers stand at sites: ``<site>-c<i>``, behind the site's link.

        Args:
            layout: Each site's name, its number of containers and its link to its parent
                (none at the root).

        Raises:
            ValueError: The option lists its containers itself (``places_at_sites`` false).

        """
        if not self.places_at_sites:
            raise ValueError(f"storage={self.kind} does not place containers at sites")
        placed = self.model_copy(update={"containers": sum(n for _, n, _ in layout)})
        placed._sites = tuple(layout)
        return placed

    def container_slots(self, prefix: str) -> list[tuple[str, LinkSpec | None]]:
        """Each container's name and link: ``<prefix>-c<i>``, or the sites' where placed."""
        if self._sites is not None:
            return [
                (site_container(site, i), link) for site, n, link in self._sites for i in range(n)
            ]
        count, link = getattr(self, "containers", 0), getattr(self, "link", None)
        return [(f"{prefix}-c{i}", link) for i in range(count)]

    def fault_target_names(self, kind: str) -> list[str] | None:
        """Counted containers' names (those behind a link for the link kinds); else None."""
        if not self.places_at_sites or kind not in self.takes_faults():
            return None
        links = kind in {"link_slow", "link_partition"}
        return [name for name, link in self.container_slots(self.kind) if link or not links]

    def container_specs(self) -> tuple[list[ContainerSpec], list[str]]:
        """The containers, and temporary folders to remove at the end."""
        raise NotImplementedError

    def container_count(self) -> int:
        """How many containers there are (without opening or creating any)."""
        raise NotImplementedError

    def fits_stripes(self, coding: ComponentConfig, placement: ComponentConfig) -> list[str]:
        """Whether each stripe's chunks can go to distinct containers; the problems if not.

        A placer that chooses (n, k) per object (D-Rex's) fits its own stripes.
        """
        if self.share_containers or getattr(placement, "chooses_shape", False):
            return []
        m = int(getattr(coding.build(), "m", 1))
        have = self.container_count()
        if have >= m:
            return []
        return [
            f"coding={coding.kind} stores {m} chunks per stripe and storage={self.kind} has "
            f"{have} container(s): add containers, choose a shorter code, or set "
            "storage.share_containers=true (a lost container then loses two chunks)"
        ]

    def declares_failure_rates(self) -> bool:
        """Whether every container has an annual failure rate (reliability placers need it)."""
        return self.afr_pct is not None

    def shared_between_processes(self) -> bool:
        """Whether every process reaches the same containers (not so for ``memory://``)."""
        return True

    def build(self) -> StorageNetwork:
        """The network (opened by the engine as a context manager)."""
        raise NotImplementedError
