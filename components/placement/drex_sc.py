"""D-Rex SC: every node subset, three objectives, the best point of their Pareto front.

For each subset of 2..n nodes (fewer than 1025 subsets: beyond that, the first
1025 / (n − 1) of each size over the nodes sorted by free space, as the reference does), K is
the largest value meeting the target, and the subset is valid if every node has room for
S/K. Three objectives, all minimized:

- saturation: mean over the subset of 1 − f(free_j − S/K), with f(x) = (1/n)^((x − maxNode) /
  (minData − maxNode)) falling from 1 at the largest node's capacity to 1/n at the smallest
  item seen so far;
- time: encode + parallel write + parallel read + decode (the cost model);
- storage: N·S/K.

On the Pareto front each objective is scored 0–100 (100 = best) and the subset maximizing
(1 − Sys)·time + (space + saturation)/2 wins, Sys being the same saturation curve applied
to the whole system's free space (the reference's decision rule 1, labelled SC).

Everything is vectorized over subsets with numpy: K comes from each subset's survival CDF
(computed once per subset set, cached per target), and the Pareto front from a prefix-minimum
sweep over time order per storage level, which leaves only front candidates for the exact
pairwise check.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations, islice
from math import comb
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from components.placement.cluster import Cluster
from components.placement.costs import (
    CLIENT_BANDWIDTH_MB_S,
    DATA_DIR,
    CodingTimes,
    NearestSize,
    coding_seconds,
    data_path,
)
from components.placement.protocol import CannotPlace
from components.placement.reliability import as_threshold, failure_pmf, max_k_matrix
from components.placement.scheduling import (
    Decision,
    ReliabilityPlacementConfig,
    ReliabilityPlacer,
    Scheduler,
    SchedulingContext,
    no_space,
    unreachable,
)

COMPLEXITY_THRESHOLD = 1025  # the reference's complexity_threshold (2000 is commented out)
RESORT_AFTER_MB = 10_000.0
EXACT_FRONT_BELOW = 96


class _Subsets:
    """Every candidate node subset as padded arrays."""

    def __init__(self, cluster: Cluster, order: list[int], reduced: bool) -> None:
        n = len(order)
        per_size = COMPLEXITY_THRESHOLD // max(1, n - 1)
        groups: list[tuple[int, ...]] = []
        for r in range(2, n + 1):
            found = combinations(range(n), r)
            groups.extend(islice(found, per_size) if reduced else found)
        width = max((len(g) for g in groups), default=0)
        self.count = len(groups)
        self.members = np.zeros((self.count, width), dtype=np.int64)
        self.mask = np.zeros((self.count, width), dtype=bool)
        self.sizes = np.array([len(g) for g in groups], dtype=np.int64)
        self.cdf = np.ones((self.count, width + 1))
        for row, group in enumerate(groups):
            nodes = [order[pos] for pos in group]
            self.members[row, : len(nodes)] = nodes
            self.mask[row, : len(nodes)] = True
            self.cdf[row, : len(nodes) + 1] = _subset_cdf(
                tuple(float(p) for p in cluster.p_fail[nodes])
            )
        padded_write = np.where(self.mask, cluster.write_bw[self.members], np.inf)
        padded_read = np.where(self.mask, cluster.read_bw[self.members], np.inf)
        self.min_write = padded_write.min(axis=1)
        self.min_read = padded_read.min(axis=1)
        self.nodes = cluster.size
        self._k: dict[float, NDArray[np.int64]] = {}
        self._plans: dict[tuple[bytes, int, int, float], _Plan | None] = {}

    def plan(
        self, target: float, limit: int, times: CodingTimes, nearest: NearestSize
    ) -> _Plan | None:
        """What stays fixed for this target, limit and price bracket (None: none reliable)."""
        k_all = self.max_k(target)
        # Keyed by K per subset, not by target: random targets are nearly all distinct, but
        # far fewer of them differ in the (N, K) they allow, and the plan depends on that only.
        key = (k_all.tobytes(), limit, nearest.index, nearest.size_mb)
        if key not in self._plans:
            if len(self._plans) > 256:
                self._plans.clear()
            rows = np.flatnonzero((k_all > 0) & (self.sizes <= limit))
            self._plans[key] = _Plan(self, rows, k_all[rows], times, nearest) if len(rows) else None
        return self._plans[key]

    def max_k(self, target: float) -> NDArray[np.int64]:
        """K per subset for ``target`` (0 where none meets it), cached per threshold."""
        threshold = as_threshold(target)
        found = self._k.get(threshold)
        if found is None:
            if len(self._k) > 64:
                self._k.clear()
            found = self._k[threshold] = max_k_matrix(self.cdf, self.sizes, target)
        return found


class _Plan:
    """The reliable subsets for one target and price bracket, and their fixed orderings.

    An item's time and storage are its size times a per-subset coefficient, so their order
    across subsets does not change from item to item; only free space (room and saturation)
    does. That lets a prefix-minimum sweep drop most dominated subsets before the exact
    pairwise check. The sweep only uses comparisons that rounding cannot flip: a clearly
    smaller time coefficient, and a clearly smaller N/K or the same (N, K).
    """

    def __init__(
        self,
        subsets: _Subsets,
        rows: NDArray[np.int64],
        k: NDArray[np.int64],
        times: CodingTimes,
        nearest: NearestSize,
    ) -> None:
        self.n = subsets.sizes[rows]
        self.k = k
        self.k_values, k_index = np.unique(k, return_inverse=True)
        self.k_index = k_index.ravel()
        pad = subsets.nodes  # reads +inf free space / 0 saturation
        self.member_nodes = np.where(subsets.mask[rows], subsets.members[rows], pad)
        cells = self.k_index[:, None] * subsets.nodes + subsets.members[rows]
        self.member_cells = np.where(subsets.mask[rows], cells, len(self.k_values) * pad)
        self.min_write = subsets.min_write[rows]
        self.min_read = subsets.min_read[rows]
        index, reference = nearest.index, nearest.size_mb
        link = 1.0 / CLIENT_BANDWIDTH_MB_S
        per_mb = (
            coding_seconds(times.encode[index], self.n, k, reference, 1.0)
            + np.maximum(link, 1.0 / (k * self.min_write))
            + np.maximum(link, 1.0 / (k * self.min_read))
            + coding_seconds(times.decode[index], self.n, k, reference, 1.0)
        )
        self.by_time = np.argsort(per_mb, kind="stable")
        ordered = per_mb[self.by_time]
        self.last_faster = np.searchsorted(ordered, per_mb * (1 - 1e-9), side="left") - 1
        pair = self.n * 1000 + k
        pairs, pair_of = np.unique(pair, return_inverse=True)
        self.pair_of = pair_of.ravel()
        ratio = self.n / k
        pair_ratio = (pairs // 1000) / (pairs % 1000)
        self.no_more_storage = (ratio[self.by_time][None, :] < pair_ratio[:, None] * (1 - 1e-9)) | (
            pair[self.by_time][None, :] == pairs[:, None]
        )

    def undominated(self, saturation: NDArray[np.float64]) -> NDArray[np.bool_]:
        """False for subsets a clearly faster, no larger subset beats on saturation."""
        by_time = saturation[self.by_time]
        best = np.minimum.accumulate(
            np.where(self.no_more_storage, by_time[None, :], np.inf), axis=1
        )
        found = best[self.pair_of, np.maximum(self.last_faster, 0)]
        kept: NDArray[np.bool_] = (self.last_faster < 0) | (found >= saturation)
        return kept


@lru_cache(maxsize=1 << 15)
def _subset_cdf(p_fail: tuple[float, ...]) -> NDArray[np.float64]:
    """A subset's survival CDF; reduced subset sets are rebuilt per item from the same nodes."""
    return np.cumsum(failure_pmf(p_fail))


def subset_count(n: int) -> int:
    """Subsets of 2..n nodes, counted as the reference does (each size capped at the threshold)."""
    return sum(min(comb(n, r), COMPLEXITY_THRESHOLD) for r in range(2, n + 1))


def pareto_front(objectives: NDArray[np.float64]) -> NDArray[np.int64]:
    """Rows of ``objectives`` (time, storage, saturation; all minimized) that no row dominates.

    Row i is dominated if another row is ≤ in every column and < in one. Returned in row order.
    """
    rows = len(objectives)
    if rows > EXACT_FRONT_BELOW:
        # Prefilter: a row is dominated if some row with time ≤ and storage ≤ has a strictly
        # smaller saturation. Per storage level, a prefix minimum over time order finds it.
        time, storage, saturation = objectives.T
        by_time = np.argsort(time, kind="stable")
        last = np.searchsorted(time[by_time], time, side="right") - 1
        levels, level_of = np.unique(storage, return_inverse=True)
        sat_by_time = np.where(
            storage[by_time][None, :] <= levels[:, None], saturation[by_time][None, :], np.inf
        )
        best_below = np.minimum.accumulate(sat_by_time, axis=1)[level_of.ravel(), last]
        keep = np.flatnonzero(best_below >= saturation)
    else:
        keep = np.arange(rows)
    # dominated[i]: some row j is no worse than row i everywhere and better somewhere.
    no_worse = np.ones((len(keep), len(keep)), dtype=bool)
    better = np.zeros((len(keep), len(keep)), dtype=bool)
    for column in objectives[keep].T:
        no_worse &= column[None, :] <= column[:, None]
        better |= column[None, :] < column[:, None]
    dominated = (no_worse & better).any(axis=1)
    front: NDArray[np.int64] = keep[~dominated]
    return front


def _score(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """0–100 across the front, 100 for the smallest; all 0 when the values do not differ."""
    spread = values.max() - values.min()
    if spread > 0:
        scores: NDArray[np.float64] = 100 - ((values - values.min()) * 100) / spread
        return scores
    return np.zeros(len(values))


def _decay(x: NDArray[np.float64], x1: float, x2: float, y2: float) -> NDArray[np.float64]:
    """The reference's exponential from (x1, 1) to (x2, y2)."""
    return np.power(y2, (x - x1) / (x2 - x1))


class DrexSC:
    """D-Rex's saturation-and-cost scheduler (the reference's ``algorithm4``, rule 1)."""

    name = "drex_sc"

    def __init__(self) -> None:
        self._subsets: _Subsets | None = None
        self._built_for: tuple[int, ...] = ()
        self._seen_mb = 0.0

    def _candidates(self, cluster: Cluster) -> _Subsets:
        live = tuple(i for i in range(cluster.size) if cluster.up[i])
        reduced = subset_count(len(live)) >= COMPLEXITY_THRESHOLD
        # Reduced sets follow free space; the reference rebuilds them for every item once
        # 10 GB went by, and every set when nodes come or go.
        if (
            self._subsets is None
            or live != self._built_for
            or (reduced and self._seen_mb > RESORT_AFTER_MB)
        ):
            order = (
                cluster.by_free_space() if reduced else [i for i in cluster.order if cluster.up[i]]
            )
            self._subsets = _Subsets(cluster, order, reduced)
            self._built_for = live
        return self._subsets

    def schedule(
        self, cluster: Cluster, size_mb: float, target: float, ctx: SchedulingContext
    ) -> Decision:
        """Place one item."""
        subsets = self._candidates(cluster)
        self._seen_mb += size_mb
        if ctx.coding_times is None:
            raise CannotPlace("drex_sc needs the coding time model (ec_times)")
        plan = subsets.plan(target, ctx.limit(cluster), ctx.coding_times, ctx.nearest)
        if plan is None:
            raise unreachable(target)
        live = cluster.up_count
        min_data = cluster.min_item_mb
        chunk_k = size_mb / plan.k_values
        chunk = chunk_k[plan.k_index]
        # Room: the fullest member can take a chunk (padding reads as +inf).
        free = np.append(cluster.free, np.inf)
        valid = free[plan.member_nodes].min(axis=1) >= chunk
        if not valid.any():
            raise no_space(size_mb, " on any node subset meeting the target")
        # Saturation of each node after a chunk of each K, then summed per subset node by
        # node, in the reference's order (padding reads as 0).
        after = cluster.free[None, :] - chunk_k[:, None]
        per_node = 1.0 - _decay(after, float(cluster.capacity.max()), min_data, 1.0 / live)
        table = np.append(per_node.ravel(), 0.0)[plan.member_cells]
        saturation = np.zeros(len(plan.n))
        for column in range(table.shape[1]):
            saturation = saturation + table[:, column]
        saturation = saturation / plan.n
        times = ctx.coding_times
        index, reference = ctx.nearest.index, ctx.nearest.size_mb
        link = size_mb / CLIENT_BANDWIDTH_MB_S
        n, k = plan.n, plan.k
        total_time = (
            coding_seconds(times.encode[index], n, k, reference, size_mb)
            + np.maximum(link, chunk / plan.min_write)
            + np.maximum(link, chunk / plan.min_read)
            + coding_seconds(times.decode[index], n, k, reference, size_mb)
        )
        storage = chunk * n
        candidates = plan.undominated(np.where(valid, saturation, np.inf)) & valid
        rows = np.flatnonzero(candidates)
        front = rows[
            pareto_front(np.column_stack([total_time[rows], storage[rows], saturation[rows]]))
        ]
        system = 1.0 - float(
            _decay(np.array(cluster.total_free), cluster.total_capacity, min_data, 1.0 / live)
        )
        with np.errstate(invalid="ignore"):  # inf - inf spreads: no time score, as in C
            time_score, space_score, sat_score = (
                _score(v[front]) for v in (total_time, storage, saturation)
            )
        scores = (1 - system) * time_score + (space_score + sat_score) / 2.0
        best = int(front[int(np.argmax(scores))])  # the first best, as the reference
        nodes = tuple(int(i) for i in plan.member_nodes[best] if i < cluster.size)
        return Decision(int(n[best]), int(k[best]), nodes)


class DrexSCConfig(ReliabilityPlacementConfig):
    """D-Rex SC: all node subsets, Pareto front of saturation, time and storage."""

    kind: Literal["drex_sc"] = "drex_sc"

    def scheduler(self) -> Scheduler:
        """Create the scheduler."""
        return DrexSC()

    def build(self) -> ReliabilityPlacer:
        """The placer for the storage fabric, timed with the authors' measured coding tables.

        The simulator hands SC the tables its scenario names; the fabric has none of its own.
        """
        times = CodingTimes.load(data_path(f"{DATA_DIR}/ec_times"))
        return ReliabilityPlacer(self.scheduler(), self.reliability, self.duration_days, times)
