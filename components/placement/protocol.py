"""The ``placement`` group: choose (n, k) and the nodes that hold an item's chunks.

The storage fabric asks a :class:`Placer` once per segment; the D-Rex simulator asks the same
placers once per item. Nodes are described by :class:`NodeInfo` snapshots, never by live
containers, so a placer is a pure decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from components.base import ComponentConfig


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What a placer knows of one node (a storage container).

    Attributes:
        node_id: Index of the node in the network.
        capacity: Declared capacity in bytes.
        used: Bytes stored there now.
        up: Whether it takes writes.
        write_mb_s: Write bandwidth (MB/s), if known.
        read_mb_s: Read bandwidth (MB/s), if known.
        afr_pct: Annual failure rate in percent, if known.

    """

    node_id: int
    capacity: int
    used: int
    up: bool = True
    write_mb_s: float | None = None
    read_mb_s: float | None = None
    afr_pct: float | None = None

    @property
    def free(self) -> int:
        """Bytes left before the declared capacity."""
        return self.capacity - self.used


@dataclass(frozen=True, slots=True)
class ChunkPlacement:
    """Where an item goes: ``n`` chunks, any ``k`` of which rebuild it, on ``node_ids``."""

    n: int
    k: int
    node_ids: tuple[int, ...]


class CannotPlace(RuntimeError):
    """No valid placement; the message says why (no space, too few nodes, target unreachable)."""


@runtime_checkable
class Placer(Protocol):
    """Chooses nodes (and, for reliability-aware placers, n and k) for one item."""

    name: str

    def place(
        self,
        size: int,
        nodes: Sequence[NodeInfo],
        *,
        n: int,
        k: int,
        reliability: float | None = None,
    ) -> ChunkPlacement:
        """Place an item of ``size`` bytes coded as ``n`` chunks (``k`` needed).

        Placers that pick their own (n, k), such as D-Rex's, may return others; fixed ones
        return exactly ``n`` nodes, distinct while at least ``n`` nodes can take a chunk.

        Raises:
            CannotPlace: no node set can hold the item.

        """


class PlacementConfig(ComponentConfig):
    """Base of placer configs."""

    def build(self) -> Placer:
        """Create the placer."""
        raise NotImplementedError


class RankingPlacer:
    """A fixed-(n, k) placer: rank the nodes that fit and take the first ``n``.

    Nodes are distinct while enough fit; subclasses only say how to rank.
    """

    name = "ranking"

    def rank(self, candidates: list[NodeInfo], size: int) -> list[NodeInfo]:
        """The candidates in order of preference."""
        raise NotImplementedError

    def place(
        self,
        size: int,
        nodes: Sequence[NodeInfo],
        *,
        n: int,
        k: int,
        reliability: float | None = None,
    ) -> ChunkPlacement:
        """Place ``n`` chunks on the best-ranked nodes with room for one."""
        candidates = self.rank(fitting(nodes, chunk_bytes(size, k)), size)
        return ChunkPlacement(n, k, spread(candidates, n, size, k))


def chunk_bytes(size: int, k: int) -> int:
    """Bytes of one chunk of a ``size``-byte item cut into ``k`` data chunks."""
    return max(1, -(-size // k))


def fitting(nodes: Sequence[NodeInfo], chunk: int) -> list[NodeInfo]:
    """The up nodes with room for one more chunk."""
    return [node for node in nodes if node.up and node.free >= chunk]


def spread(candidates: Sequence[NodeInfo], n: int, size: int, k: int) -> tuple[int, ...]:
    """The first ``n`` candidates, reusing nodes in order only when fewer than ``n`` are given.

    Raises:
        CannotPlace: when no candidate is left.

    """
    if not candidates:
        raise CannotPlace(
            f"no up container has room for a {chunk_bytes(size, k)}-byte chunk "
            f"of a {size}-byte item"
        )
    return tuple(candidates[i % len(candidates)].node_id for i in range(n))
