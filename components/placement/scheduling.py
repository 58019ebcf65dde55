"""Reliability-aware scheduling: the fast path shared by D-Rex's schedulers and baselines.

A :class:`Scheduler` decides (N, K) and the nodes of one item on a :class:`Cluster` (arrays,
no per-node objects), which the trace-driven simulator calls a million times per run. The
same scheduler serves the storage fabric through :class:`ReliabilityPlacer`, the
:class:`~components.placement.protocol.Placer` protocol's adapter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from components.base import ComponentConfig
from components.placement.cluster import MB, Cluster
from components.placement.costs import CodingTimes, NearestSize
from components.placement.protocol import (
    CannotPlace,
    ChunkPlacement,
    NodeInfo,
    PlacementConfig,
    Placer,
)
from components.placement.reliability import max_k_from_cdf


@dataclass(frozen=True)
class Decision:
    """Where one item goes.

    Attributes:
        n: Chunks stored.
        k: Chunks needed to read the item back.
        nodes: Node indices (into the cluster's arrays), one per stored piece.
        amounts: MB written to each node; None means S/K on each.

    """

    n: int
    k: int
    nodes: tuple[int, ...]
    amounts: tuple[float, ...] | None = None

    def written(self, size_mb: float) -> NDArray[np.float64]:
        """MB written to each chosen node."""
        if self.amounts is not None:
            return np.array(self.amounts)
        return np.full(len(self.nodes), size_mb / self.k)


@dataclass
class SchedulingContext:
    """What schedulers may consult besides the cluster: limits and the cost model.

    Attributes:
        max_n: Most chunks per item (0: as many as there are live nodes).
        coding_times: Encode/decode time planes (SC's time objective).
        nearest: Which reference size prices the current item.

    """

    max_n: int = 0
    coding_times: CodingTimes | None = None
    nearest: NearestSize = field(default_factory=NearestSize)

    def limit(self, cluster: Cluster) -> int:
        """The largest N allowed now."""
        live = cluster.up_count
        return live if self.max_n <= 0 else min(self.max_n, live)


@runtime_checkable
class Scheduler(Protocol):
    """Chooses (N, K) and nodes for one item on a cluster."""

    name: str

    def schedule(
        self, cluster: Cluster, size_mb: float, target: float, ctx: SchedulingContext
    ) -> Decision:
        """Place an item of ``size_mb`` MB meeting ``target``.

        Raises:
            CannotPlace: no space, or no node set meets the target.

        """


class PrefixReliability:
    """Survival CDFs of every prefix of a node order, cached per order.

    The greedy schedulers and LB take the first N nodes of the free-space order; that order
    changes only when free space reorders the nodes, so the O(N²) recurrences are shared.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self._cache: dict[tuple[int, ...], list[NDArray[np.float64]]] = {}
        self._capacity = capacity

    def cdfs(self, cluster: Cluster, order: Sequence[int]) -> list[NDArray[np.float64]]:
        """Element N (N ≥ 1) is P[X ≤ t] (t = 0..N) for the first N nodes of ``order``."""
        key = tuple(order)
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= self._capacity:
                self._cache.clear()
            # One node folded in at a time: the same operations as a DP per prefix.
            found = [np.ones(1)]
            pmf = np.ones(1)
            for node in key:
                p = float(cluster.p_fail[node])
                pmf = np.append(pmf * (1.0 - p), 0.0) + np.append(0.0, pmf * p)
                found.append(np.cumsum(pmf))
            self._cache[key] = found
        return found

    def max_k(self, cluster: Cluster, order: Sequence[int], n: int, target: float) -> int | None:
        """Largest valid K on the first ``n`` nodes of ``order``."""
        return max_k_from_cdf(self.cdfs(cluster, order)[n], n, target)


class FreeSpaceScheduler:
    """Base of the schedulers that stripe over the first N nodes by free space.

    Subclasses implement :meth:`choose` on the freest-first order (GreedyMinStorage,
    GreedyLeastUsed and D-Rex LB), sharing the prefix reliability cache.
    """

    name = "free_space"

    def __init__(self) -> None:
        self.reliability = PrefixReliability()

    def schedule(
        self, cluster: Cluster, size_mb: float, target: float, ctx: SchedulingContext
    ) -> Decision:
        """Place one item on the freest-first order."""
        return self.choose(cluster, cluster.by_free_space(), size_mb, target, ctx)

    def choose(
        self,
        cluster: Cluster,
        order: list[int],
        size_mb: float,
        target: float,
        ctx: SchedulingContext,
    ) -> Decision:
        """Pick (N, K) and the first N nodes of ``order``."""
        raise NotImplementedError


def fits(cluster: Cluster, nodes: Sequence[int], chunk_mb: float) -> bool:
    """Whether every node has room for a chunk."""
    free = cluster.free
    return all(free[i] >= chunk_mb for i in nodes)


def no_space(size_mb: float, detail: str = "") -> CannotPlace:
    """The refusal for lack of space."""
    return CannotPlace(f"no space: no valid node set can hold {size_mb:g} MB{detail}")


def too_wide(n: int, limit: int) -> CannotPlace:
    """The refusal when a fixed code is wider than the nodes allowed."""
    return CannotPlace(f"no space: the code needs {n} nodes, at most {limit} may be used")


def unreachable(target: float, detail: str = "") -> CannotPlace:
    """The refusal for an unreachable reliability target."""
    return CannotPlace(f"target unreachable: no node set meets reliability {target}{detail}")


class ReliabilityPlacer:
    """A :class:`Scheduler` seen through the ``Placer`` protocol (the storage fabric's view).

    Sizes come in bytes and node snapshots as :class:`NodeInfo`; the scheduler picks (N, K)
    itself, so the requested ``n`` and ``k`` are ignored. ``chooses_shape`` tells the storage
    fabric to ask once per object and code it with the returned (N, K).
    """

    chooses_shape = True

    def __init__(
        self,
        scheduler: Scheduler,
        default_target: float,
        duration_days: float,
        coding_times: CodingTimes | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.name = scheduler.name
        self.default_target = default_target
        self.duration_days = duration_days
        self._ctx = SchedulingContext(coding_times=coding_times)

    def place(
        self,
        size: int,
        nodes: Sequence[NodeInfo],
        *,
        n: int,
        k: int,
        reliability: float | None = None,
    ) -> ChunkPlacement:
        """Choose (N, K) and distinct nodes for ``size`` bytes.

        One chunk (``n=1``: a repaired chunk, or one whose write failed) has no (N, K) to
        choose: it goes to the up node with the most free space that holds it.
        """
        roomy = [node for node in nodes if node.up and node.capacity - node.used >= size]
        if n == 1:
            if not roomy:
                raise CannotPlace(f"placement={self.name}: no up node has {size} bytes free")
            best = max(roomy, key=lambda node: node.capacity - node.used)
            return ChunkPlacement(1, 1, (best.node_id,))
        if len(roomy) < 2:
            raise CannotPlace(
                f"placement={self.name}: {len(roomy)} up node(s) with room; "
                "a reliability placer needs at least 2"
            )
        cluster = Cluster.from_node_infos(nodes, self.duration_days, scheduler=self.name)
        target = self.default_target if reliability is None else reliability
        size_mb = max(size, 1) / MB
        cluster.min_item_mb = size_mb
        self._ctx.nearest.update(size_mb)
        decision = self.scheduler.schedule(cluster, size_mb, target, self._ctx)
        return ChunkPlacement(
            decision.n, decision.k, tuple(int(cluster.ids[i]) for i in decision.nodes)
        )


class ReliabilityPlacementConfig(PlacementConfig):
    """Base of reliability-aware placers' configs."""

    chooses_shape: ClassVar[bool] = True  # (n, k) per object: the coding group's is a default

    reliability: float = Field(
        0.99999, gt=0, lt=1, description="target when an object does not name its own"
    )
    duration_days: float = Field(365.0, gt=0, description="how long items must survive")

    def scheduler(self) -> Scheduler:
        """Create the scheduler (the simulator's fast path)."""
        raise NotImplementedError

    def check_with(self, groups: Mapping[str, ComponentConfig]) -> list[str]:
        """Live containers must declare failure rates: the placer ranks nodes by them."""
        storage = groups.get("storage")
        declares = getattr(storage, "declares_failure_rates", None)
        if storage is None or declares is None or declares():
            return []
        return [
            f"placement={self.kind} ranks containers by their failure rates, and "
            f"storage={storage.kind} declares none; set storage.afr_pct (every container's "
            "annual failure rate, %), or afr_pct on each container of storage=mixed as "
            "recipe=drex/live does, or choose a placer that ignores them (round_robin, random, "
            "utility_factor)"
        ]

    def build(self) -> ReliabilityPlacer:
        """Create the placer."""
        return ReliabilityPlacer(self.scheduler(), self.reliability, self.duration_days)


class PlacerScheduler:
    """Any fixed-(n, k) :class:`Placer` (utility factor, round robin) as a scheduler.

    The simulator hands it node snapshots as the storage fabric would; it does not choose
    (n, k) or check the target, so the scenario's ``fixed_n`` and ``fixed_k`` apply.
    """

    def __init__(self, placer: Placer, n: int, k: int) -> None:
        self.placer = placer
        self.name = placer.name
        self.n, self.k = n, k

    def schedule(
        self, cluster: Cluster, size_mb: float, target: float, ctx: SchedulingContext
    ) -> Decision:
        """Place one item."""
        nodes = [
            NodeInfo(
                i,
                int(cluster.capacity[i] * MB),
                int((cluster.capacity[i] - cluster.free[i]) * MB),
                bool(cluster.up[i]),
                float(cluster.write_bw[i]),
                float(cluster.read_bw[i]),
            )
            for i in range(cluster.size)
        ]
        placement = self.placer.place(
            int(size_mb * MB), nodes, n=self.n, k=self.k, reliability=target
        )
        return Decision(placement.n, placement.k, placement.node_ids)
