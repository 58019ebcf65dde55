"""Node sets as arrays: what D-Rex's schedulers and the trace-driven simulator work on.

Sizes are MB (floats, as in the reference), bandwidths MB/s, failure rates percent per year.
A :class:`Cluster` also remembers the order in which its nodes were last sorted: the
reference sorts one node array in place with a stable sort, so ties (equal free space) keep
the previous order, and reproducing its choices needs the same tie-breaking.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from components.placement.csv_rows import read_rows
from components.placement.protocol import CannotPlace, NodeInfo
from components.placement.reliability import failure_probability

NODE_COLUMNS = ("id", "storage_size", "write_bandwidth", "read_bandwidth", "annual_failure_rate")
MB = 1_000_000


class NodeSetError(ValueError):
    """A node set that cannot be used; the message names the file, row and field."""


@dataclass(frozen=True)
class NodeSpec:
    """One node: capacity (MB), write/read bandwidth (MB/s), annual failure rate (percent)."""

    node_id: int
    capacity_mb: float
    write_mb_s: float
    read_mb_s: float
    afr_pct: float

    def __post_init__(self) -> None:
        problems = []
        if not self.capacity_mb > 0:
            problems.append(f"capacity {self.capacity_mb} MB must be > 0")
        if not (self.write_mb_s > 0 and self.read_mb_s > 0):
            problems.append(f"bandwidths {self.write_mb_s}/{self.read_mb_s} MB/s must be > 0")
        if not 0 <= self.afr_pct <= 100:
            problems.append(f"annual failure rate {self.afr_pct} must be within [0, 100] percent")
        if problems:
            raise NodeSetError(f"node {self.node_id}: " + "; ".join(problems))


def read_nodes(path: Path) -> list[NodeSpec]:
    """Read a node CSV (``id,storage_size,write_bandwidth,read_bandwidth,annual_failure_rate``).

    Raises:
        NodeSetError: missing file or columns, unparsable or out-of-range values, no nodes.

    """
    rows = read_rows(path, "node set", NodeSetError)
    header = [h.strip() for h in rows[0]]
    missing = [c for c in NODE_COLUMNS if c not in header]
    if missing:
        raise NodeSetError(
            f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(NODE_COLUMNS)}"
        )
    where = {name: header.index(name) for name in NODE_COLUMNS}
    nodes = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            values = {name: float(row[i]) for name, i in where.items()}
        except (ValueError, IndexError) as exc:
            raise NodeSetError(f"{path}, line {line}: cannot read {row}: {exc}") from exc
        try:
            nodes.append(
                NodeSpec(
                    int(values["id"]),
                    values["storage_size"],
                    values["write_bandwidth"],
                    values["read_bandwidth"],
                    values["annual_failure_rate"],
                )
            )
        except NodeSetError as exc:
            raise NodeSetError(f"{path}, line {line}: {exc}") from exc
    if not nodes:
        raise NodeSetError(f"{path}: the node set is empty")
    return nodes


@dataclass
class Cluster:
    """Mutable state of a node set during a simulation (or one placement decision).

    Attributes:
        ids: Node ids, in input order (index i is node i everywhere below).
        capacity: Capacity (MB).
        free: Free space now (MB).
        write_bw: Write bandwidth (MB/s).
        read_bw: Read bandwidth (MB/s).
        p_fail: Probability of failing within the items' duration.
        up: Whether the node is alive.
        order: Node indices in the order of the last in-place sort (ties keep it).
        min_item_mb: Smallest item size seen so far (SC's saturation scale).

    """

    ids: NDArray[np.int64]
    capacity: NDArray[np.float64]
    free: NDArray[np.float64]
    write_bw: NDArray[np.float64]
    read_bw: NDArray[np.float64]
    p_fail: NDArray[np.float64]
    up: NDArray[np.bool_]
    order: list[int] = field(default_factory=list)
    min_item_mb: float = float("inf")

    @classmethod
    def from_specs(cls, nodes: Sequence[NodeSpec], duration_days: float = 365.0) -> Cluster:
        """A cluster of empty nodes."""
        if not nodes:
            raise NodeSetError("the node set is empty")
        capacity = np.array([n.capacity_mb for n in nodes], dtype=np.float64)
        # The reference reads the order sorted by capacity first (stable on ties).
        cluster = cls(
            ids=np.array([n.node_id for n in nodes], dtype=np.int64),
            capacity=capacity,
            free=capacity.copy(),
            write_bw=np.array([n.write_mb_s for n in nodes], dtype=np.float64),
            read_bw=np.array([n.read_mb_s for n in nodes], dtype=np.float64),
            p_fail=np.array([failure_probability(n.afr_pct, duration_days) for n in nodes]),
            up=np.ones(len(nodes), dtype=bool),
            order=list(range(len(nodes))),
        )
        cluster.sort_by(lambda i: -cluster.free[i])
        return cluster

    @classmethod
    def from_node_infos(
        cls, nodes: Sequence[NodeInfo], duration_days: float = 365.0, *, scheduler: str
    ) -> Cluster:
        """A snapshot of live containers (bytes → MB) for one placement decision."""
        missing = [n.node_id for n in nodes if n.afr_pct is None]
        if missing:
            raise CannotPlace(
                f"placement={scheduler} needs afr_pct (and bandwidths) on every container; "
                f"container(s) {missing} have none"
            )
        cluster = cls(
            ids=np.array([n.node_id for n in nodes], dtype=np.int64),
            capacity=np.array([n.capacity / MB for n in nodes], dtype=np.float64),
            free=np.array([max(0.0, n.free / MB) for n in nodes], dtype=np.float64),
            write_bw=np.array([n.write_mb_s or 100.0 for n in nodes], dtype=np.float64),
            read_bw=np.array([n.read_mb_s or 100.0 for n in nodes], dtype=np.float64),
            p_fail=np.array([failure_probability(n.afr_pct or 0.0, duration_days) for n in nodes]),
            up=np.array([n.up for n in nodes], dtype=bool),
            order=list(range(len(nodes))),
        )
        return cluster

    @property
    def size(self) -> int:
        """Number of nodes, up or not."""
        return len(self.ids)

    @property
    def up_count(self) -> int:
        """Number of live nodes."""
        return int(self.up.sum())

    def sort_by(self, key: Callable[[int], float]) -> list[int]:
        """Stable-sort the live nodes by ``key`` (ascending); dead nodes go last.

        Returns:
            The live nodes in the new order.

        """
        self.order.sort(key=lambda i: (not self.up[i], key(i)))
        return [i for i in self.order if self.up[i]]

    def by_free_space(self) -> list[int]:
        """Live nodes, most free space first (the greedy schedulers' and LB's order)."""
        free = self.free
        return self.sort_by(lambda i: -free[i])

    def by_write_bandwidth(self) -> list[int]:
        """Live nodes, fastest writers first (the baselines' order)."""
        bandwidth = self.write_bw
        return self.sort_by(lambda i: -bandwidth[i])

    @property
    def max_capacity(self) -> float:
        """Largest live node's capacity (MB)."""
        return float(self.capacity[self.up].max()) if self.up.any() else 0.0

    @property
    def total_capacity(self) -> float:
        """Capacity of the live nodes (MB)."""
        return float(self.capacity[self.up].sum())

    @property
    def total_free(self) -> float:
        """Free space on the live nodes (MB)."""
        return float(self.free[self.up].sum())
