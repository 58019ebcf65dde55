"""A data container: one fsspec URL with a declared capacity, measured use and a health check.

Containers can be taken down and brought back (fault experiments) and may sit behind an
emulated link (bandwidth and latency) to mimic a remote site.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
import uuid
from typing import Any, Self

from pydantic import Field, field_validator

from components.base import LoomModel
from components.placement.protocol import NodeInfo
from components.storage._keys import check_key
from components.storage.protocol import ContainerDown, StorageError

MB = 1_000_000
_HEALTH_KEY = ".loom-health"


def url_protocol(url: str) -> str:
    """``s3`` for ``s3://b/p``; ``file`` for plain paths."""
    return url.split("://", 1)[0] if "://" in url else "file"


def check_protocol(url: str) -> str:
    """The URL's protocol if fsspec can serve it here; else a message naming what to install."""
    from fsspec.registry import known_implementations, registry

    protocol = url_protocol(url)
    if protocol in registry:
        return protocol
    known = known_implementations.get(protocol)
    if known is None:
        raise ValueError(
            f"unknown container protocol '{protocol}'; fsspec knows: "
            f"{', '.join(sorted(known_implementations))}"
        )
    module = known["class"].rsplit(".", 1)[0]
    if importlib.util.find_spec(module.split(".")[0]) is None:
        package = module.split(".")[0]
        raise ValueError(
            f"protocol '{protocol}' needs the package '{package}' "
            f"(pip install {package}); fsspec says: {known.get('err', '')}"
        )
    return protocol


class LinkSpec(LoomModel):
    """An emulated network link in front of a container."""

    bandwidth_mb_s: float = Field(gt=0, le=1e6, description="link bandwidth, MB/s (shared)")
    latency_ms: float = Field(0.0, ge=0, le=10_000, description="added per request, ms")


class ContainerSpec(LoomModel):
    """One data container of the storage network."""

    url: str = Field(description="fsspec URL: file:///data/c0, memory://c0, s3://bucket/prefix")
    name: str = Field("", description="label in records (default: the URL)")
    capacity_mb: float = Field(1024.0, gt=0, description="declared capacity, MB")
    options: dict[str, Any] = Field(
        default_factory=dict, description="fsspec storage options (endpoint_url, key, ...)"
    )
    link: LinkSpec | None = Field(None, description="emulated link (bandwidth, latency)")
    afr_pct: float | None = Field(None, ge=0, le=100, description="annual failure rate, %")

    @field_validator("url")
    @classmethod
    def _known_protocol(cls, url: str) -> str:
        check_protocol(url)
        return url


class Link:
    """A shared link: transfers queue for its bandwidth, each also waits the latency."""

    def __init__(self, spec: LinkSpec) -> None:
        self._bytes_per_s = spec.bandwidth_mb_s * MB
        self._latency_s = spec.latency_ms / 1000
        self._free_at = 0.0
        self._lock = threading.Lock()

    def transfer(self, nbytes: int) -> None:
        """Block for as long as ``nbytes`` take on this link, given what is queued."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._free_at)
            self._free_at = start + nbytes / self._bytes_per_s
            until = self._free_at + self._latency_s
        time.sleep(max(0.0, until - time.monotonic()))


class DataContainer:
    """One container: keys map to ``<root>/<key>`` on its filesystem, never outside it."""

    def __init__(self, spec: ContainerSpec, node_id: int) -> None:
        import fsspec

        self.spec = spec
        self.node_id = node_id
        self.name = spec.name or spec.url
        self.capacity = int(spec.capacity_mb * MB)
        options = dict(spec.options)
        if url_protocol(spec.url) == "file":
            options.setdefault("auto_mkdir", True)
        if url_protocol(spec.url) == "s3":
            options.setdefault("skip_instance_cache", True)
            options.setdefault("use_listings_cache", False)
        self.fs: Any
        self.fs, root = fsspec.core.url_to_fs(spec.url, **options)
        self.root = root.rstrip("/")
        self.link = Link(spec.link) if spec.link else None
        # Local files write a view as it is; other filesystems (memory keeps the object,
        # s3fs sends it) need bytes of their own.
        self._writes_views = url_protocol(spec.url) == "file"
        self.up = True
        self._used = 0
        self._lock = threading.Lock()

    def open(self) -> Self:
        """Create the root if needed, check health and measure the bytes already there."""
        try:
            self.fs.makedirs(self.root, exist_ok=True)
            self.check_health()
            self._used = self._measure_used()
        except StorageError:
            raise
        except Exception as exc:
            raise StorageError(
                f"container {self.name}: cannot open {self.spec.url}: {type(exc).__name__}: {exc}"
            ) from exc
        return self

    def _measure_used(self) -> int:
        try:
            return int(self.fs.du(self.root))
        except FileNotFoundError:
            return 0

    @property
    def used(self) -> int:
        """Bytes stored (measured at open, then counted on writes, deletes and reservations)."""
        return self._used

    def remeasure(self) -> None:
        """Measure the bytes stored again (other processes may have written or deleted)."""
        used = self._measure_used()
        with self._lock:
            self._used = used

    def reserve(self, nbytes: int) -> None:
        """Count bytes about to be written (placement sees them at once); negative releases."""
        with self._lock:
            self._used += nbytes

    def info(self) -> NodeInfo:
        """A snapshot for placers."""
        link = self.spec.link
        bandwidth = link.bandwidth_mb_s if link else None
        return NodeInfo(
            self.node_id,
            self.capacity,
            self._used,
            self.up,
            bandwidth,
            bandwidth,
            self.spec.afr_pct,
        )

    def path(self, key: str) -> str:
        """The filesystem path of a (validated) key inside this container."""
        return f"{self.root}/{check_key(key)}"

    def _require_up(self) -> None:
        if not self.up:
            raise ContainerDown(f"container {self.name} is down")

    def write(self, key: str, data: bytes | memoryview) -> None:
        """Store ``data`` under ``key`` (its bytes must already be reserved)."""
        self._require_up()
        path = self.path(key)
        if self.link:
            self.link.transfer(len(data))
        if isinstance(data, memoryview) and not self._writes_views:
            data = bytes(data)
        self.fs.pipe_file(path, data)

    def read(self, key: str) -> bytes:
        """The bytes under ``key``; ``FileNotFoundError`` if absent."""
        self._require_up()
        data: bytes = self.fs.cat_file(self.path(key))
        if self.link:
            self.link.transfer(len(data))
        return data

    def delete(self, key: str, size: int) -> None:
        """Remove ``key`` if present and release its ``size`` bytes."""
        self._require_up()
        try:
            self.fs.rm_file(self.path(key))
        except FileNotFoundError:
            return
        self.reserve(-size)

    def exists(self, key: str) -> bool:
        """Whether ``key`` is stored here."""
        self._require_up()
        return bool(self.fs.exists(self.path(key)))

    def check_health(self, attempts: int = 3, backoff_s: float = 0.05) -> bool:
        """Write, read back and remove a probe; raise :class:`ContainerDown` if that fails.

        The probe is this process's and thread's own object (processes sharing a folder wrote
        one probe file over each other and read back each other's, and marked a healthy
        container down), and a failure is tried ``attempts`` times before the container is
        declared down.
        """
        self._require_up()
        key = f"{_HEALTH_KEY}-{os.getpid()}-{threading.get_ident()}"
        failure: Exception | None = None
        for attempt in range(attempts):
            probe = f"{time.time()} {uuid.uuid4().hex}".encode()
            try:
                self.fs.pipe_file(self.path(key), probe)
                if self.fs.cat_file(self.path(key)) == probe:
                    self.fs.rm_file(self.path(key))
                    return True
                failure = ContainerDown(f"container {self.name}: health probe read back wrong")
            except Exception as exc:
                failure = exc
            time.sleep(backoff_s * 2**attempt)
        if isinstance(failure, ContainerDown):
            raise failure
        raise ContainerDown(
            f"container {self.name} ({self.spec.url}) failed its health check "
            f"{attempts} times: {type(failure).__name__}: {failure}"
        ) from failure

    def take_down(self) -> None:
        """Refuse all I/O until :meth:`bring_up` (the data stays, as on a real outage)."""
        self.up = False

    def bring_up(self) -> None:
        """Serve I/O again."""
        self.up = True
