"""The storage fabric: objects cut into segments, coded, and spread over data containers.

Chunk I/O runs on the fabric's own thread pools (coders and fsspec release the GIL), with at
most ``parallelism`` segments in flight per put or get, so memory stays bounded by
segment size × parallelism × m / k whatever the object size.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import BinaryIO

import xxhash

from components.coding.protocol import Coder
from components.coding.reshape import reshape
from components.placement.protocol import CannotPlace, Placer
from components.runtime.memory import keep_freed_memory
from components.storage._catalog import Catalog, ChunkRow, ObjectRow
from components.storage._keys import check_key
from components.storage.container import DataContainer
from components.storage.protocol import (
    AccessDenied,
    ContainerDown,
    InsufficientCapacity,
    ObjectNotFound,
    ObjectStat,
    ObjectUnreadable,
    PutSource,
    StorageError,
)

log = logging.getLogger(__name__)


@dataclass
class FabricCounters:
    """What the fabric did, for metrics."""

    degraded_reads: int = 0
    chunk_read_failures: int = 0
    chunk_write_failures: int = 0
    chunks_repaired: int = 0
    redundancy_lost: int = 0  # stripes with two chunks on one container (too few were up)
    chunks_unrepaired: int = 0  # bad chunks left bad: no container without one of their stripe


@dataclass
class ScrubReport:
    """Result of :meth:`StorageFabric.scrub`."""

    seconds: float = 0.0
    chunks_checked: int = 0
    chunks_missing: int = 0
    chunks_corrupt: int = 0
    chunks_repaired: int = 0
    chunks_unrepaired: int = 0
    segments_unrecoverable: int = 0
    objects_unrecoverable: list[str] = field(default_factory=list)


@dataclass
class _Health:
    errors: int = 0
    seconds_per_mb: float = 0.0


def _chunk_path(object_id: str, segment: int, idx: int) -> str:
    """Where a chunk lives in its container: one flat folder (ext4 and S3 index it).

    A folder per object cost a directory inode per chunk written, as much as the write, and
    stayed when emptied.
    """
    return f"{object_id}.{segment}.{idx}"


def _chunk_hash(data: bytes | memoryview) -> str:
    return xxhash.xxh3_64_hexdigest(data)


class StorageFabric:
    """The shared storage network of one catalog: containers + coder + placer.

    Args:
        containers: Opened data containers (their names must be unique).
        coder: Codes each segment into ``m`` chunks.
        placer: Chooses the containers of each segment's chunks.
        catalog_path: SQLite file of the metadata.
        segment_size: Bytes per segment.
        parallelism: Segments in flight per put or get.
        tenants: Tenant name → token.
        collect_garbage: Clean up failed writes and strays on opening. Off for a process that
            joins a catalog others are writing to: their writes in flight look like strays.
        share_containers: Let one container hold two chunks of a stripe when too few distinct
            containers are up with room (counted in ``redundancy_lost``); otherwise such a
            write is refused and such a repair left undone.

    """

    def __init__(
        self,
        containers: Sequence[DataContainer],
        coder: Coder,
        placer: Placer,
        catalog_path: Path,
        *,
        segment_size: int = 8 * 2**20,
        parallelism: int = 4,
        tenants: Mapping[str, str] | None = None,
        collect_garbage: bool = True,
        share_containers: bool = False,
    ) -> None:
        names = [c.name for c in containers]
        if len(set(names)) != len(names):
            raise StorageError(f"container names must be unique, got {names}")
        keep_freed_memory()  # each put allocates and frees a few MiB
        self.containers = list(containers)
        self._by_name = {c.name: c for c in containers}
        self.coder = coder
        self.placer = placer
        self.catalog = Catalog(catalog_path)
        self.segment_size = segment_size
        self.parallelism = parallelism
        self.tenants = dict(tenants or {})
        self.counters = FabricCounters()
        self.share_containers = share_containers
        self._coders: dict[str, Coder] = {f"{coder.k},{coder.m}": coder}
        self._health = {c.name: _Health() for c in containers}
        self._place_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._active: set[str] = set()
        self._segments_pool = ThreadPoolExecutor(parallelism, thread_name_prefix="loom-segment")
        self._io_pool = ThreadPoolExecutor(
            min(64, parallelism * 2 * max(coder.m, 1)), thread_name_prefix="loom-chunk-io"
        )
        if collect_garbage:
            self.collect_garbage()

    # -- lifecycle -----------------------------------------------------------------------
    def close(self) -> None:
        """Stop the pools, close the catalog and delete the chunk files kept for reuse."""
        self._segments_pool.shutdown()
        self._io_pool.shutdown()
        self.catalog.close()
        for container in self.containers:
            if container.up:
                container.empty_recycle_bin()

    def __enter__(self) -> StorageFabric:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def connect(self, tenant: str, token: str) -> TenantStore:
        """A tenant's ``ObjectStore`` (the storage protocol); a wrong token is refused."""
        expected = self.tenants.get(tenant)
        if expected is None or not hmac.compare_digest(expected.encode(), token.encode()):
            raise AccessDenied(f"tenant {tenant!r}: unknown tenant or wrong token; access refused")
        return TenantStore(self, tenant)

    def container(self, name: str) -> DataContainer:
        """The container called ``name``."""
        return self._by_name[name]

    def _count(self, name: str, delta: int = 1) -> None:
        with self._count_lock:
            setattr(self.counters, name, getattr(self.counters, name) + delta)

    # -- put -------------------------------------------------------------------------------
    def put(
        self, catalog: str, key: str, source: PutSource, *, reliability: float | None = None
    ) -> ObjectStat:
        """Store an object; visible only once every chunk is written.

        Args:
            catalog: The catalog.
            key: The object's key.
            source: Bytes, a file path, or a binary stream.
            reliability: The object's durability target, for placers that choose (n, k)
                per object (D-Rex's); others ignore it.

        """
        size_hint = _size_of(source)
        if size_hint is not None:
            self._check_capacity(size_hint)
        object_id = uuid.uuid4().hex
        coder, stripe = self._shape(size_hint, reliability)
        pending = ObjectRow(
            object_id,
            catalog,
            key,
            0,
            "",
            coder.name,
            coder.k,
            coder.m,
            self.segment_size,
            "pending",
        )
        self.catalog.begin_object(pending)
        self._active.add(object_id)
        hasher = xxhash.xxh3_128()
        total = 0
        one_segment = size_hint is not None and size_hint <= self.segment_size
        in_flight: deque[Future[list[ChunkRow]]] = deque()
        placed: list[list[ChunkRow]] = []  # each segment's chunks where they were written
        try:
            try:
                for index, segment in enumerate(_segments(source, self.segment_size)):
                    total += len(segment)
                    if one_segment:  # nothing to overlap it with: no hand-off to a pool thread
                        hasher.update(segment)
                        placed.append(self._put_segment(object_id, index, segment, coder, stripe))
                        continue
                    in_flight.append(
                        self._segments_pool.submit(
                            self._put_segment, object_id, index, segment, coder, stripe
                        )
                    )
                    hasher.update(segment)  # while the segment is coded (xxhash frees the GIL)
                    if len(in_flight) >= self.parallelism:
                        placed.append(in_flight.popleft().result())
                while in_flight:
                    placed.append(in_flight.popleft().result())
            except BaseException:
                wait(in_flight)  # no write may land after the clean-up below
                raise
            digest = hasher.hexdigest()
            replaced = self.catalog.commit_object(object_id, catalog, key, total, digest)
        except BaseException:
            self.catalog.discard(object_id)
            self._collect(object_id)
            raise
        finally:
            self._active.discard(object_id)
        if replaced is not None:
            self._collect(replaced)
        # What this put stored (read back from the catalog, a later put could already show).
        return _object_stat(replace(pending, size=total, hash=digest), placed)

    def _check_capacity(self, size: int) -> None:
        up = [c for c in self.containers if c.up]
        needed = -(-size // self.coder.k) * self.coder.m
        free = sum(max(0, c.capacity - c.used) for c in up)
        if needed > free:
            raise InsufficientCapacity(
                f"an object of {size} bytes needs {needed} bytes with {self.coder.name}; "
                f"{free} bytes are free on {len(up)} up container(s)"
            )

    def _shape(
        self, size: int | None, reliability: float | None
    ) -> tuple[Coder, list[DataContainer] | None]:
        """The object's coder, and its nodes when the placer chooses (n, k) per object.

        A D-Rex placer decides once per object, on its whole size, as the paper places
        items; every segment then goes to the same nodes.
        """
        if not getattr(self.placer, "chooses_shape", False):
            return self.coder, None
        with self._place_lock:
            nodes = [c.info() for c in self.containers]
            try:
                placement = self.placer.place(
                    size or self.segment_size,
                    nodes,
                    n=self.coder.m,
                    k=self.coder.k,
                    reliability=reliability,
                )
            except CannotPlace as exc:
                raise InsufficientCapacity(str(exc)) from exc
        coder = self._coders.setdefault(
            f"{placement.k},{placement.n}", reshape(self.coder, placement.k, placement.n)
        )
        by_id = {c.node_id: c for c in self.containers}
        return coder, [by_id[i] for i in placement.node_ids]

    def _put_segment(
        self,
        object_id: str,
        index: int,
        segment: bytes | memoryview,
        coder: Coder,
        stripe: list[DataContainer] | None,
    ) -> list[ChunkRow]:
        """Code, place and write one segment; its chunks' rows where they were written."""
        chunks = coder.encode(segment)
        rows = self._place(object_id, index, len(segment), chunks, exclude=set(), stripe=stripe)
        writes = sorted(zip(rows, chunks, strict=True), key=lambda w: self._writes_here(w[0]))
        pending = {self._start_write(row, chunk): (row, chunk) for row, chunk in writes}
        holders = {row.container for row in rows}
        failed: set[str] = set()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                row, chunk = pending.pop(future)
                if future.exception() is None:
                    continue
                self._count("chunk_write_failures")
                failed.add(row.container)
                self._leave_stray(row.container, row.path, 0)  # a partial write may be there
                # Move the chunk to another container; the catalog row follows first.
                try:
                    moved = self._replace_chunk(
                        object_id, index, len(segment), chunk, row, holders, failed
                    )
                except InsufficientCapacity as exc:
                    error = future.exception()
                    raise StorageError(
                        f"writing chunk {row.idx} of segment {index} to {row.container} failed "
                        f"({type(error).__name__}: {error}) and no other container can take "
                        f"it: {exc}"
                    ) from error
                holders.add(moved.container)
                rows[row.idx] = moved
                pending[self._start_write(moved, chunk)] = (moved, chunk)
        return rows

    def _writes_here(self, row: ChunkRow) -> bool:
        """Whether a chunk is written on the segment's own thread: a local folder, no link.

        Such a write is a copy into the page cache (tens of µs); handing it to a pool thread
        cost more than the write, and their threads fought over 2 cores and the GIL.
        """
        return self._by_name[row.container].quick

    def _start_write(self, row: ChunkRow, chunk: bytes | memoryview) -> Future[None]:
        """Write a chunk here (quick containers) or on the I/O pool; its outcome, as a future."""
        if not self._writes_here(row):
            return self._io_pool.submit(self._write_chunk, row, chunk)
        done: Future[None] = Future()
        try:
            self._write_chunk(row, chunk)
        except Exception as exc:
            done.set_exception(exc)
        else:
            done.set_result(None)
        return done

    def _replace_chunk(
        self,
        object_id: str,
        segment: int,
        segment_bytes: int,
        chunk: bytes | memoryview,
        row: ChunkRow,
        holders: set[str],
        failed: set[str],
    ) -> ChunkRow:
        """A new home for a chunk whose write failed.

        A container without a chunk of this segment if there is one, else any container that
        has not failed.
        """
        try:
            (moved,) = self._place(
                object_id, segment, segment_bytes, [chunk], exclude=holders | failed, idx=row.idx
            )
        except InsufficientCapacity:
            (moved,) = self._place(
                object_id, segment, segment_bytes, [chunk], exclude=failed, idx=row.idx
            )
        return moved

    def _place(
        self,
        object_id: str,
        segment: int,
        segment_bytes: int,
        chunks: Sequence[bytes | memoryview],
        *,
        exclude: set[str],
        idx: int | None = None,
        stripe: list[DataContainer] | None = None,
    ) -> list[ChunkRow]:
        """Choose containers, reserve their bytes and record the chunk rows (before writing).

        ``stripe`` gives the containers outright (a per-object placement).
        """
        chunk_size = len(chunks[0])
        hashes = [_chunk_hash(chunk) for chunk in chunks]  # outside the lock: it takes time
        with self._place_lock:
            if stripe is not None:
                chosen = stripe[: len(chunks)]
            else:
                chosen = self._choose(segment_bytes, len(chunks), exclude)
            for container in chosen:
                container.reserve(chunk_size)
            rows = [
                ChunkRow(
                    object_id,
                    segment,
                    i if idx is None else idx,
                    container.name,
                    _chunk_path(object_id, segment, i if idx is None else idx),
                    len(chunk),
                    hashes[i],
                    segment_bytes,
                )
                for i, (container, chunk) in enumerate(zip(chosen, chunks, strict=True))
            ]
            # Recorded under the lock so that a stray sweep never races a chunk taking its path.
            self.catalog.record_chunks(rows)
        return rows

    def _choose(self, segment_bytes: int, count: int, exclude: set[str]) -> list[DataContainer]:
        """Ask the placer for ``count`` containers, none in ``exclude`` (placement lock held)."""
        nodes = [
            c.info() if c.name not in exclude else replace(c.info(), up=False)
            for c in self.containers
        ]
        try:
            placement = self.placer.place(segment_bytes, nodes, n=count, k=self.coder.k)
        except CannotPlace as exc:
            raise InsufficientCapacity(str(exc)) from exc
        by_id = {c.node_id: c for c in self.containers}
        chosen = [by_id[i] for i in placement.node_ids[:count]]
        distinct = len({c.name for c in chosen})
        if distinct < count:  # losing one container now loses more than one chunk
            if not self.share_containers:
                raise InsufficientCapacity(
                    f"a {count}-chunk stripe needs {count} distinct containers with room and "
                    f"only {distinct} are up; storage.share_containers=true lets one hold two "
                    "chunks (losing it then loses both)"
                )
            if not self.counters.redundancy_lost:
                log.warning(
                    "a %d-chunk stripe went to %d containers (only those were up with room): "
                    "it no longer survives %d lost containers; see metric redundancy_lost",
                    count,
                    distinct,
                    count - self.coder.k,
                )
            self._count("redundancy_lost")
        return chosen

    def _write_chunk(self, row: ChunkRow, chunk: bytes | memoryview) -> None:
        container = self._by_name[row.container]
        try:
            container.write(row.path, chunk)
        except BaseException:
            container.reserve(-row.size)
            raise

    # -- get -------------------------------------------------------------------------------
    def _visible(self, catalog: str, key: str) -> ObjectRow:
        row = self.catalog.visible(catalog, key)
        if row is None:
            raise ObjectNotFound(f"no object {key!r} in catalog {catalog!r}")
        return row

    def get_stream(self, catalog: str, key: str) -> Iterator[bytes]:
        """Yield an object's segments in order, ``parallelism`` segments read ahead."""
        row = self._visible(catalog, key)
        segments = _by_segment(self.catalog.chunks(row.id))
        hasher = xxhash.xxh3_128()
        ahead: deque[Future[bytes]] = deque()
        pending = iter(segments)
        try:
            for chunks in pending:
                ahead.append(self._segments_pool.submit(self._get_segment, row, chunks))
                if len(ahead) >= self.parallelism:
                    break
            while ahead:
                data = ahead.popleft().result()
                next_chunks = next(pending, None)
                if next_chunks is not None:
                    ahead.append(self._segments_pool.submit(self._get_segment, row, next_chunks))
                hasher.update(data)
                yield data
        finally:
            for future in ahead:
                future.cancel()
        if hasher.hexdigest() != row.hash:
            raise StorageError(f"object {key!r} in {catalog!r} failed its whole-object hash")

    def get(self, catalog: str, key: str) -> bytes:
        """Read a whole object."""
        return b"".join(self.get_stream(catalog, key))

    def _rank(self, row: ObjectRow, chunk: ChunkRow) -> tuple[bool, int, bool, float]:
        container = self._by_name.get(chunk.container)
        health = self._health.get(chunk.container, _Health(errors=1 << 30))
        up = container is not None and container.up
        return (not up, health.errors, chunk.idx >= row.k, health.seconds_per_mb)

    def _get_segment(self, row: ObjectRow, chunks: Sequence[ChunkRow]) -> bytes:
        ranked = sorted(chunks, key=lambda c: self._rank(row, c))
        candidates = iter(ranked)
        reads: dict[Future[bytes | None], ChunkRow] = {}
        for chunk in ranked[: row.k]:
            next(candidates)
            reads[self._io_pool.submit(self._read_chunk, chunk)] = chunk
        got: dict[int, bytes] = {}
        degraded = any(c.idx >= row.k for c in ranked[: row.k]) and row.k < row.m
        while len(got) < row.k:
            if not reads:
                raise ObjectUnreadable(
                    f"object {row.key!r} in {row.catalog!r}: segment {chunks[0].segment} has "
                    f"{len(got)} good chunks, needs {row.k} ({row.coding})"
                )
            done, _ = wait(reads, return_when=FIRST_COMPLETED)
            for future in done:
                chunk = reads.pop(future)
                data = future.result()
                if data is not None:
                    got[chunk.idx] = data
                    continue
                degraded = True
                fallback = next(candidates, None)
                if fallback is not None:
                    reads[self._io_pool.submit(self._read_chunk, fallback)] = fallback
        for future in reads:  # more came back than needed
            future.cancel()
        if degraded:
            self._count("degraded_reads")
        return self._coder_for(row).decode(got, chunks[0].segment_bytes)

    def _coder_for(self, row: ObjectRow) -> Coder:
        coder = self._coders.get(f"{row.k},{row.m}")
        if coder is None:
            coder = self._coders.setdefault(f"{row.k},{row.m}", reshape(self.coder, row.k, row.m))
        if coder.name != row.coding:
            raise StorageError(
                f"object {row.key!r} was coded with {row.coding}; this fabric uses "
                f"{self.coder.name}"
            )
        return coder

    def _read_chunk(self, chunk: ChunkRow) -> bytes | None:
        """The chunk's bytes if present and intact, else None (counted against the container)."""
        container = self._by_name.get(chunk.container)
        health = self._health.get(chunk.container)
        if container is None or health is None or not container.up:
            return None
        start = time.perf_counter()
        try:
            data = container.read(chunk.path)
        except (FileNotFoundError, ContainerDown, OSError):
            data = None
        if data is None or len(data) != chunk.size or _chunk_hash(data) != chunk.hash:
            health.errors += 1
            self._count("chunk_read_failures")
            return None
        per_mb = (time.perf_counter() - start) / max(len(data) / 1e6, 1e-3)
        health.seconds_per_mb = 0.8 * health.seconds_per_mb + 0.2 * per_mb
        return data

    # -- metadata ----------------------------------------------------------------------------
    def exists(self, catalog: str, key: str) -> bool:
        """Whether a visible object has this key."""
        return self.catalog.visible(catalog, key) is not None

    def delete(self, catalog: str, key: str) -> None:
        """Hide the object, then delete its chunks."""
        row = self._visible(catalog, key)
        self.catalog.discard(row.id)
        self._collect(row.id)

    def stat(self, catalog: str, key: str) -> ObjectStat:
        """Size, coding, placement and hashes."""
        row = self._visible(catalog, key)
        return _object_stat(row, _by_segment(self.catalog.chunks(row.id)))

    # -- garbage, scrub and repair ---------------------------------------------------------------
    def _collect(self, object_id: str) -> bool:
        """Delete an object version's chunks; forget it once none is left anywhere."""
        complete = True
        for chunk in self.catalog.chunks(object_id):
            container = self._by_name.get(chunk.container)
            if container is None or not container.up:
                complete = False  # collected when the container is back
                continue
            try:
                container.delete(chunk.path, chunk.size)
            except Exception:
                complete = False
        if complete:
            self.catalog.forget(object_id)
        return complete

    def collect_garbage(self) -> int:
        """Delete chunks of failed, interrupted, replaced and deleted objects, and strays.

        Returns:
            How many object versions and stray chunk copies were removed.

        """
        versions = sum(self._collect(i) for i in self.catalog.garbage(exclude=set(self._active)))
        for container in self.containers:
            if container.up:  # files kept for reuse by processes that died
                container.empty_recycle_bin(everyone=True)
        return versions + self.sweep_strays()

    def scrub(self, *, repair: bool = False) -> ScrubReport:
        """Verify every chunk (present, right size and hash); optionally rebuild bad ones."""
        report = ScrubReport()
        start = time.perf_counter()
        self.sweep_strays()  # copies left on containers that were down at the last repair
        for row in self.catalog.committed():
            lost = False
            for chunks in _by_segment(self.catalog.chunks(row.id)):
                bad: list[ChunkRow] = []
                for chunk in chunks:
                    report.chunks_checked += 1
                    state = self._chunk_state(chunk)
                    if state != "ok":
                        bad.append(chunk)
                        report.chunks_missing += state == "missing"
                        report.chunks_corrupt += state == "corrupt"
                if not bad or not repair:
                    continue
                try:
                    repaired, unrepaired = self._repair_segment(row, chunks, bad)
                except ObjectUnreadable:
                    report.segments_unrecoverable += 1
                    lost = True
                    continue
                report.chunks_repaired += repaired
                report.chunks_unrepaired += unrepaired
            if lost:
                report.objects_unrecoverable.append(f"{row.catalog}/{row.key}")
        self._count("chunks_repaired", report.chunks_repaired)
        self._count("chunks_unrepaired", report.chunks_unrepaired)
        if report.chunks_unrepaired:
            log.warning(
                "repair left %d chunk(s) bad: every up container with room already holds a chunk "
                "of their stripe; storage.share_containers=true lets one hold two",
                report.chunks_unrepaired,
            )
        report.seconds = time.perf_counter() - start
        return report

    def repair(self) -> ScrubReport:
        """Rebuild every missing or corrupt chunk onto healthy containers."""
        return self.scrub(repair=True)

    def _chunk_state(self, chunk: ChunkRow) -> str:
        container = self._by_name.get(chunk.container)
        if container is None or not container.up:
            return "missing"
        try:
            data = container.read(chunk.path)
        except (FileNotFoundError, ContainerDown, OSError):
            return "missing"
        if len(data) != chunk.size or _chunk_hash(data) != chunk.hash:
            return "corrupt"
        return "ok"

    def _repair_segment(
        self, row: ObjectRow, chunks: list[ChunkRow], bad: list[ChunkRow]
    ) -> tuple[int, int]:
        """Rebuild ``bad`` chunks; (chunks repaired, chunks left bad)."""
        good = [c for c in chunks if c not in bad]
        segment = self._get_segment(row, good)
        encoded = self._coder_for(row).encode(segment)
        holders = {c.container for c in good}
        unrepaired = 0
        for chunk in bad:
            place = partial(
                self._place,
                row.id,
                chunk.segment,
                chunk.segment_bytes,
                [encoded[chunk.idx]],
                idx=chunk.idx,
            )
            try:
                (moved,) = place(exclude=holders)
            except InsufficientCapacity:  # every up container with room holds one already
                if not self.share_containers:
                    unrepaired += 1
                    continue
                (moved,) = place(exclude=set())
                self._count("redundancy_lost")
            self._write_chunk(moved, encoded[chunk.idx])
            holders.add(moved.container)
            if chunk.container == moved.container:
                self._by_name[moved.container].reserve(-chunk.size)  # rewritten in place
            else:
                self._leave_stray(chunk.container, chunk.path, chunk.size)
        return len(bad) - unrepaired, unrepaired

    def _leave_stray(self, container_name: str, path: str, size: int) -> None:
        """Record a copy no chunk row points to; delete it now if its container is up."""
        self.catalog.add_stray(container_name, path, size)
        container = self._by_name.get(container_name)
        if container is not None and container.up:
            self._sweep_stray(container, path, size)

    def sweep_strays(self) -> int:
        """Delete the stray chunk copies on containers that are up; return how many went."""
        swept = 0
        for name, path, size in self.catalog.strays():
            container = self._by_name.get(name)
            if container is not None and container.up:
                swept += self._sweep_stray(container, path, size)
        return swept

    def _sweep_stray(self, container: DataContainer, path: str, size: int) -> bool:
        # Under the placement lock: a chunk placed at this path after the check is recorded
        # (and written) only after the delete.
        with self._place_lock:
            if not self.catalog.forget_stray(container.name, path):
                return False  # a chunk took its path
            try:
                container.delete(path, size)
            except Exception:
                self.catalog.add_stray(container.name, path, size)  # for the next sweep
                return False
        return True


class TenantStore:
    """One tenant's view of a :class:`StorageFabric`: only its own catalogs."""

    def __init__(self, fabric: StorageFabric, tenant: str) -> None:
        self.fabric = fabric
        self.tenant = tenant
        self._own: set[str] = set()  # catalogs seen to be this tenant's (a claim is for good)

    def _catalog(self, catalog: str, *, create: bool = False) -> str:
        if catalog in self._own:
            return catalog
        check_key(catalog, "catalog")
        owner = (
            self.fabric.catalog.claim_catalog(catalog, self.tenant)
            if create
            else self.fabric.catalog.catalog_owner(catalog)
        )
        if owner is None:
            raise ObjectNotFound(f"no catalog {catalog!r}")
        if owner != self.tenant:
            raise AccessDenied(f"catalog {catalog!r} belongs to another tenant; access refused")
        self._own.add(catalog)
        return catalog

    def put(
        self, catalog: str, key: str, source: PutSource, *, reliability: float | None = None
    ) -> ObjectStat:
        """Store an object (the catalog is created for this tenant if new)."""
        check_key(key)
        return self.fabric.put(
            self._catalog(catalog, create=True), key, source, reliability=reliability
        )

    def get(self, catalog: str, key: str) -> bytes:
        """Read a whole object."""
        return self.fabric.get(self._catalog(catalog), key)

    def get_stream(self, catalog: str, key: str) -> Iterator[bytes]:
        """Read an object segment by segment."""
        return self.fabric.get_stream(self._catalog(catalog), key)

    def exists(self, catalog: str, key: str) -> bool:
        """Whether the object exists."""
        return self.fabric.exists(self._catalog(catalog), key)

    def delete(self, catalog: str, key: str) -> None:
        """Delete an object."""
        self.fabric.delete(self._catalog(catalog), key)

    def list(self, catalog: str, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix``."""
        return self.fabric.catalog.keys(self._catalog(catalog), prefix)

    def stat(self, catalog: str, key: str) -> ObjectStat:
        """Object metadata."""
        return self.fabric.stat(self._catalog(catalog), key)


def _object_stat(row: ObjectRow, segments: Sequence[Sequence[ChunkRow]]) -> ObjectStat:
    return ObjectStat(
        row.catalog,
        row.key,
        row.size,
        row.coding,
        row.k,
        row.m,
        row.segment_size,
        row.hash,
        [[c.container for c in seg] for seg in segments],
        [[c.hash for c in seg] for seg in segments],
    )


def _by_segment(chunks: Sequence[ChunkRow]) -> list[list[ChunkRow]]:
    groups: dict[int, list[ChunkRow]] = defaultdict(list)
    for chunk in chunks:
        groups[chunk.segment].append(chunk)
    return [groups[s] for s in sorted(groups)]


def _size_of(source: PutSource) -> int | None:
    if isinstance(source, bytes | bytearray | memoryview):
        return memoryview(source).nbytes
    if isinstance(source, Path):
        return source.stat().st_size
    return None


def _segments(source: PutSource, segment_size: int) -> Iterator[bytes | memoryview]:
    """Cut a source into segments; bytes are sliced without copying, files read piecewise."""
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source).cast("B")
        yield from (view[i : i + segment_size] for i in range(0, max(len(view), 1), segment_size))
        return
    if isinstance(source, Path):
        with source.open("rb") as handle:
            yield from _read_pieces(handle, segment_size)
        return
    yield from _read_pieces(source, segment_size)


def _read_pieces(handle: BinaryIO, segment_size: int) -> Iterator[bytes]:
    first = True
    while True:
        piece = handle.read(segment_size)
        if not piece and not first:
            return
        first = False
        yield piece
        if len(piece) < segment_size:
            return
