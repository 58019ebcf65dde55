"""The fabric's metadata in SQLite (WAL): catalogs, objects, and where every chunk lives.

An object is written as ``pending`` with its chunk rows recorded *before* the chunks are
written (an intent log), and flipped to ``committed`` in one transaction once every chunk is
durable. Readers only see committed objects; pending, failed and replaced objects are garbage
whose chunks :meth:`Catalog.garbage` lists for collection. A chunk moved away from a
container (repair, a failed write) leaves a *stray* row until its old copy is deleted.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS catalogs (name TEXT PRIMARY KEY, tenant TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    id TEXT PRIMARY KEY, catalog TEXT NOT NULL, key TEXT NOT NULL, size INTEGER,
    hash TEXT, coding TEXT NOT NULL, k INTEGER NOT NULL, m INTEGER NOT NULL,
    segment_size INTEGER NOT NULL, state TEXT NOT NULL, created REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS visible ON objects (catalog, key) WHERE state = 'committed';
CREATE TABLE IF NOT EXISTS chunks (
    object_id TEXT NOT NULL, segment INTEGER NOT NULL, idx INTEGER NOT NULL,
    container TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL, hash TEXT NOT NULL,
    segment_bytes INTEGER NOT NULL, PRIMARY KEY (object_id, segment, idx)
);
CREATE TABLE IF NOT EXISTS strays (
    container TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,
    PRIMARY KEY (container, path)
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class ChunkRow:
    """One stored chunk."""

    object_id: str
    segment: int
    idx: int
    container: str
    path: str
    size: int
    hash: str
    segment_bytes: int


@dataclass(frozen=True, slots=True)
class ObjectRow:
    """One object version."""

    id: str
    catalog: str
    key: str
    size: int
    hash: str
    coding: str
    k: int
    m: int
    segment_size: int
    state: str


class Catalog:
    """Thread-safe access to the metadata database (one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def catalog_owner(self, catalog: str) -> str | None:
        """The tenant owning ``catalog``, or None if it does not exist."""
        with self._lock:
            row = self._db.execute(
                "SELECT tenant FROM catalogs WHERE name = ?", (catalog,)
            ).fetchone()
        return None if row is None else str(row[0])

    def claim_catalog(self, catalog: str, tenant: str) -> str:
        """Create ``catalog`` for ``tenant`` if new; return its owner."""
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO catalogs VALUES (?, ?)", (catalog, tenant))
            return str(
                db.execute("SELECT tenant FROM catalogs WHERE name = ?", (catalog,)).fetchone()[0]
            )

    def begin_object(self, row: ObjectRow) -> None:
        """Record a pending object version."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO objects VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                (
                    row.id,
                    row.catalog,
                    row.key,
                    row.size,
                    row.hash,
                    row.coding,
                    row.k,
                    row.m,
                    row.segment_size,
                    time.time(),
                ),
            )

    def record_chunks(self, chunks: Iterable[ChunkRow]) -> None:
        """Record (or move) chunks; called before they are written.

        A chunk landing where a stray of the same path waits takes its place: the stray row
        goes, so that no sweep deletes the new chunk.
        """
        rows = list(chunks)
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        c.object_id,
                        c.segment,
                        c.idx,
                        c.container,
                        c.path,
                        c.size,
                        c.hash,
                        c.segment_bytes,
                    )
                    for c in rows
                ],
            )
            db.executemany(
                "DELETE FROM strays WHERE container = ? AND path = ?",
                [(c.container, c.path) for c in rows],
            )

    def add_stray(self, container: str, path: str, size: int) -> None:
        """Remember a chunk copy no row points to any more (deleted when its container is up)."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO strays VALUES (?, ?, ?)", (container, path, size))

    def add_counts(self, deltas: dict[str, int]) -> None:
        """Add to the catalog's shared counters (what every process sharing it did)."""
        with self._tx() as db:
            db.executemany(
                "INSERT INTO counters VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                list(deltas.items()),
            )

    def counts(self) -> dict[str, int]:
        """The shared counters."""
        with self._lock:
            rows = self._db.execute("SELECT name, value FROM counters").fetchall()
        return {str(name): int(value) for name, value in rows}

    def strays(self) -> list[tuple[str, str, int]]:
        """Every stray as (container, path, bytes counted on the container)."""
        with self._lock:
            rows = self._db.execute("SELECT container, path, size FROM strays").fetchall()
        return [(str(c), str(p), int(n)) for c, p, n in rows]

    def forget_stray(self, container: str, path: str) -> bool:
        """Drop a stray row; False if it was gone already (a chunk took its place)."""
        with self._tx() as db:
            cursor = db.execute(
                "DELETE FROM strays WHERE container = ? AND path = ?", (container, path)
            )
        return cursor.rowcount > 0

    def commit_object(
        self, object_id: str, catalog: str, key: str, size: int, digest: str
    ) -> str | None:
        """Make a pending object visible, replacing (and returning the id of) an older one."""
        with self._tx() as db:
            old = db.execute(
                "SELECT id FROM objects WHERE catalog = ? AND key = ? AND state = 'committed'",
                (catalog, key),
            ).fetchone()
            if old is not None:
                db.execute("UPDATE objects SET state = 'garbage' WHERE id = ?", (old[0],))
            db.execute(
                "UPDATE objects SET state = 'committed', size = ?, hash = ? WHERE id = ?",
                (size, digest, object_id),
            )
        return None if old is None else str(old[0])

    def discard(self, object_id: str) -> None:
        """Mark an object version as garbage (failed put, delete, replaced)."""
        with self._tx() as db:
            db.execute("UPDATE objects SET state = 'garbage' WHERE id = ?", (object_id,))

    def visible(self, catalog: str, key: str) -> ObjectRow | None:
        """The committed object under ``key``."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, catalog, key, size, hash, coding, k, m, segment_size, state "
                "FROM objects WHERE catalog = ? AND key = ? AND state = 'committed'",
                (catalog, key),
            ).fetchone()
        return None if row is None else ObjectRow(*row)

    def keys(self, catalog: str, prefix: str) -> list[str]:
        """Committed keys of ``catalog`` starting with ``prefix``."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self._lock:
            rows = self._db.execute(
                "SELECT key FROM objects WHERE catalog = ? AND state = 'committed' "
                "AND key LIKE ? ESCAPE '\\' ORDER BY key",
                (catalog, escaped + "%"),
            ).fetchall()
        return [str(r[0]) for r in rows if str(r[0]).startswith(prefix)]

    def committed(self) -> list[ObjectRow]:
        """Every visible object."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, catalog, key, size, hash, coding, k, m, segment_size, state "
                "FROM objects WHERE state = 'committed' ORDER BY catalog, key"
            ).fetchall()
        return [ObjectRow(*r) for r in rows]

    def chunks(self, object_id: str) -> list[ChunkRow]:
        """An object's chunks ordered by segment and index."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM chunks WHERE object_id = ? ORDER BY segment, idx", (object_id,)
            ).fetchall()
        return [ChunkRow(*r) for r in rows]

    def garbage(self, exclude: set[str]) -> list[str]:
        """Ids of garbage and pending object versions, except those in ``exclude``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM objects WHERE state IN ('garbage', 'pending')"
            ).fetchall()
        return [str(r[0]) for r in rows if r[0] not in exclude]

    def forget(self, object_id: str) -> None:
        """Drop an object version and its chunk rows (after its chunks are deleted)."""
        with self._tx() as db:
            db.execute("DELETE FROM chunks WHERE object_id = ?", (object_id,))
            db.execute("DELETE FROM objects WHERE id = ?", (object_id,))
