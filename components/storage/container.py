"""A data container: one fsspec URL with a declared capacity, measured use and a health check.

Containers can be taken down and brought back (fault experiments) and may sit behind an
emulated link (bandwidth and latency) to mimic a remote site.
"""

from __future__ import annotations

import importlib.util
import os
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

from pydantic import Field, field_validator

from components.base import LoomModel
from components.faults.protocol import Fault, Injected
from components.placement.protocol import NodeInfo
from components.storage._keys import check_key
from components.storage.protocol import ContainerDown, StorageError

MB = 1_000_000
_HEALTH_KEY = ".loom-health"
_RECYCLE_BIN = ".loom-recycled"  # deleted chunk files kept for reuse, in a local container
_RECYCLE_MAX = 16  # files a process keeps per container: a few segments' worth of chunks


class InjectedFault:
    """What the faults group did to a container, seen by every ``DataContainer`` of its URL here.

    Attributes:
        down: I/O is refused (:class:`ContainerDown`), as on an outage.
        partitioned: Its link carries nothing: I/O is refused as unreachable.
        slowdown: Each request takes this many times as long (1: as usual).
        link_slowdown: Its emulated link is this many times slower.

    """

    __slots__ = ("down", "link_slowdown", "partitioned", "slowdown")

    def __init__(self) -> None:
        self.down = False
        self.partitioned = False
        self.slowdown = 1.0
        self.link_slowdown = 1.0

    @property
    def clear(self) -> bool:
        """Whether nothing is injected any more."""
        return not (self.down or self.partitioned) and self.slowdown == self.link_slowdown == 1


# Container URL → its injected fault, for this process (the fabric connector and the storage
# network build their own DataContainer objects over the same URLs).
INJECTED: dict[str, InjectedFault] = {}


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


def _write_file(path: str, data: bytes | memoryview) -> None:
    """Write a local file, creating its folder only when it is missing."""
    try:
        file = open(path, "wb")  # noqa: SIM115 (closed below, after the retry)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        file = open(path, "wb")  # noqa: SIM115
    with file:
        file.write(data)


def _move(source: str, target: str) -> bool:
    """Rename a file, creating the target's folder if missing; False if ``source`` is gone."""
    try:
        os.rename(source, target)
    except FileNotFoundError:
        if not os.path.exists(source):
            return False
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.rename(source, target)
    return True


def _overwrite(path: str, data: bytes | memoryview) -> None:
    """Write ``data`` over an existing file's first bytes and cut the rest."""
    fd = os.open(path, os.O_WRONLY)
    try:
        view = memoryview(data).cast("B")
        longer = os.fstat(fd).st_size > len(view)  # chunks are mostly of one size: no cut
        written = 0
        while written < len(view):
            written += os.pwrite(fd, view[written:], written)
        if longer:
            os.ftruncate(fd, len(view))
    finally:
        os.close(fd)


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
        # Local files go straight to the OS (fsspec's opener and its directory check on every
        # write cost as much as coding a chunk); they write a view as it is. Other filesystems
        # (memory keeps the object, s3fs sends it) need bytes of their own.
        self._local = url_protocol(spec.url) == "file"
        # A local container renames deleted chunk files aside and writes new chunks over them:
        # creating and unlinking a file (its inode, its fresh pages) cost the kernel several
        # times what writing its bytes does. Each process keeps its own few; another may sweep
        # them (collect_garbage), and a write whose file is gone creates one.
        self._recycled: deque[str] = deque()
        self._up = True
        self._used = 0
        self._moved = 0
        self._lock = threading.Lock()

    def open(self) -> Self:
        """Create the root if needed, check health and measure the bytes already there."""
        try:
            self.fs.makedirs(self.root, exist_ok=True)
            self.check_health()
            self._used = self._measure_used()
        except StorageError:
            raise
        except FileExistsError as exc:  # a file where the folder should be: taken down
            raise ContainerDown(
                f"container {self.name} is down: {self.spec.url} is a file, not a folder "
                "(as an injected container_down leaves it)"
            ) from exc
        except Exception as exc:
            raise StorageError(
                f"container {self.name}: cannot open {self.spec.url}: {type(exc).__name__}: {exc}"
            ) from exc
        return self

    def _measure_used(self) -> int:
        try:
            used = int(self.fs.du(self.root))
        except FileNotFoundError:
            return 0
        if self._local:  # recycled files are free space
            used -= sum(size for _, size in self._recycle_bin())
        return used

    def _recycle_bin(self) -> list[tuple[str, int]]:
        """The files in the recycle bin (every process's) and their sizes."""
        try:
            entries = list(os.scandir(f"{self.root}/{_RECYCLE_BIN}"))
        except (FileNotFoundError, NotADirectoryError):
            return []
        found = []
        for entry in entries:
            try:
                found.append((entry.path, entry.stat().st_size))
            except FileNotFoundError:  # taken by a write meanwhile
                continue
        return found

    def empty_recycle_bin(self, *, everyone: bool = False) -> int:
        """Delete this process's recycled files (``everyone``: all processes'); how many went.

        Another process that meant to reuse one it kept writes a new file instead.
        """
        paths = [path for path, _ in self._recycle_bin()] if everyone else []
        while self._recycled:
            paths.append(self._recycled.popleft())
        removed = 0
        for path in set(paths):
            try:
                os.remove(path)
                removed += 1
            except FileNotFoundError:
                continue
        return removed

    @property
    def used(self) -> int:
        """Bytes stored (measured at open, then counted on writes, deletes and reservations)."""
        return self._used

    def remeasure(self) -> None:
        """Measure the bytes stored again (other processes may have written or deleted)."""
        used = self._measure_used()
        with self._lock:
            self._used = used

    @property
    def quick(self) -> bool:
        """Whether its I/O is a local file's, with no emulated link or injected slowdown."""
        if not self._local or self.link is not None:
            return False
        fault = INJECTED.get(self.spec.url)
        return fault is None or fault.slowdown <= 1

    @property
    def bytes_moved(self) -> int:
        """Bytes written to and read from it by this process (over its link, if it has one)."""
        return self._moved

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

    @property
    def up(self) -> bool:
        """Whether it serves I/O: not taken down, and no injected outage or partition."""
        if not self._up:
            return False
        fault = INJECTED.get(self.spec.url)
        return fault is None or not (fault.down or fault.partitioned)

    def _require_up(self) -> InjectedFault | None:
        if not self._up:
            raise ContainerDown(f"container {self.name} is down")
        fault = INJECTED.get(self.spec.url)
        if fault is not None:
            if fault.down:
                raise ContainerDown(f"container {self.name} is down (an injected fault)")
            if fault.partitioned:
                raise ContainerDown(
                    f"container {self.name} is unreachable: its link is partitioned (an "
                    "injected fault)"
                )
        return fault

    @staticmethod
    def _slowed(fault: InjectedFault | None, began: float) -> None:
        """Stretch a request that took since ``began`` by an injected slowdown."""
        if fault is not None and fault.slowdown > 1:
            time.sleep((fault.slowdown - 1) * (time.perf_counter() - began))

    def _transfer(self, fault: InjectedFault | None, nbytes: int) -> None:
        with self._lock:
            self._moved += nbytes
        if self.link is not None:
            factor = 1.0 if fault is None else fault.link_slowdown
            self.link.transfer(int(nbytes * factor))

    def write(self, key: str, data: bytes | memoryview) -> None:
        """Store ``data`` under ``key`` (its bytes must already be reserved)."""
        fault = self._require_up()
        began = time.perf_counter()
        path = self.path(key)
        self._transfer(fault, len(data))
        if self._local:
            self._write_local(path, data)
        else:
            self.fs.pipe_file(path, bytes(data) if isinstance(data, memoryview) else data)
        self._slowed(fault, began)

    def _write_local(self, path: str, data: bytes | memoryview) -> None:
        try:
            recycled = self._recycled.pop()
        except IndexError:
            _write_file(path, data)
            return
        if _move(recycled, path):  # gone: another process swept the bin
            _overwrite(path, data)
        else:
            _write_file(path, data)

    def read(self, key: str) -> bytes:
        """The bytes under ``key``; ``FileNotFoundError`` if absent."""
        fault = self._require_up()
        began = time.perf_counter()
        path = self.path(key)
        if self._local:
            with open(path, "rb") as file:
                data = file.read()
        else:
            data = self.fs.cat_file(path)
        self._transfer(fault, len(data))
        self._slowed(fault, began)
        return data

    def delete(self, key: str, size: int) -> None:
        """Remove ``key`` if present and release its ``size`` bytes."""
        self._require_up()
        try:
            if self._local:
                self._delete_local(self.path(key))
            else:
                self.fs.rm_file(self.path(key))
        except FileNotFoundError:
            return
        self.reserve(-size)

    def _delete_local(self, path: str) -> None:
        if len(self._recycled) >= _RECYCLE_MAX:
            os.remove(path)
            return
        recycled = f"{self.root}/{_RECYCLE_BIN}/{os.getpid()}-{uuid.uuid4().hex}"
        if not _move(path, recycled):
            raise FileNotFoundError(path)
        self._recycled.append(recycled)

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
        self._up = False

    def bring_up(self) -> None:
        """Serve I/O again."""
        self._up = True


# -- faults on containers (the storage network's, the fabric connector's) --------------------

CONTAINER_FAULTS = frozenset({"container_down", "container_slow", "container_corrupt"})
LINK_FAULTS = frozenset({"link_slow", "link_partition"})


def _move_aside(root: str) -> tuple[str, str]:
    """Put a local container's folder out of reach: moved aside, a file in its place."""
    aside = f"{root}.loom-down"
    os.rename(root, aside)
    Path(root).write_text("this container is down (an injected fault)\n", encoding="utf-8")
    return root, aside


def _move_back(root: str, aside: str) -> None:
    os.remove(root)
    os.rename(aside, root)


def _corrupt(container: DataContainer, count: int) -> str:
    """Flip one byte in each of ``count`` stored objects of ``container`` (seeded by its name)."""
    files = sorted(
        path
        for path in container.fs.find(container.root)
        if not path.removeprefix(container.root).lstrip("/").startswith(".loom-")
    )
    chosen = random.Random(container.name).sample(files, min(count, len(files)))
    for path in chosen:
        data = bytearray(container.fs.cat_file(path))
        if data:
            data[len(data) // 2] ^= 0xFF
            container.fs.pipe_file(path, bytes(data))
    return f"{len(chosen)} object(s) of {container.name}"


def container_fault_targets(containers: Sequence[DataContainer], kind: str) -> list[str]:
    """Container names for the container kinds; those behind a link for the link kinds."""
    if kind in CONTAINER_FAULTS:
        return [c.name for c in containers]
    if kind in LINK_FAULTS:
        return [c.name for c in containers if c.link is not None]
    return []


def inject_container_fault(
    containers: Sequence[DataContainer], kind: str, targets: Sequence[str], fault: Fault
) -> Injected:
    """Take containers down, slow them or their links, cut their links, or flip chunks.

    Every container object of the same URL in this process sees it. A local folder taken
    down is also put out of reach of other processes: it is moved aside and a file stands in
    its place until it heals.
    """
    chosen = [c for c in containers if c.name in targets]
    if kind == "container_corrupt":
        flipped = [_corrupt(c, fault.chunks or 1) for c in chosen]
        return Injected("flipped a byte in " + ", ".join(flipped))
    states = [INJECTED.setdefault(c.spec.url, InjectedFault()) for c in chosen]
    moved: list[tuple[str, str]] = []
    for container, state in zip(chosen, states, strict=True):
        if kind == "container_down":
            state.down = True
            if url_protocol(container.spec.url) == "file":
                moved.append(_move_aside(container.root))
        elif kind == "link_partition":
            state.partitioned = True
        elif kind == "container_slow":
            state.slowdown = fault.slowdown
        else:
            state.link_slowdown = fault.slowdown

    def heal() -> None:
        for root, aside in moved:
            _move_back(root, aside)
        for container, state in zip(chosen, states, strict=True):
            if kind == "container_down":
                state.down = False
            elif kind == "link_partition":
                state.partitioned = False
            elif kind == "container_slow":
                state.slowdown = 1.0
            else:
                state.link_slowdown = 1.0
            if state.clear:
                INJECTED.pop(container.spec.url, None)

    what = {
        "container_down": "down",
        "link_partition": "link cut",
        "container_slow": f"{fault.slowdown:g}x slower",
        "link_slow": f"link {fault.slowdown:g}x slower",
    }[kind]
    return Injected(f"{', '.join(c.name for c in chosen)} {what}", heal)
