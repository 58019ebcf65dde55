"""HDFS 3-way replication, as the reference simulates it (including its spill rule).

Three copies go to the fastest writers with more than 128 MB free. While the target is
missed, the least reliable copy moves to the most reliable spare node; the reference keeps
its running minimum and maximum across those swaps, so in practice only the first swap can
help, and we keep that behaviour. A copy that does not fit on its node is split: the node
takes what it can and the rest spills over further nodes in bandwidth order (each added node
must keep the target with one more tolerated loss); failing that, any three nodes that meet
the target and each hold a full copy are used. Storage used is always 3 × S.

When fewer than three nodes have 128 MB free, the reference keeps the missing copies in
empty slots (it reads them from outside its node array) and ends in that last rule; so do
we, which is what keeps the Facebook trace item-for-item equal once the nodes fill up.
"""

from __future__ import annotations

from itertools import combinations
from typing import Literal

from components.placement.cluster import Cluster
from components.placement.reliability import meets
from components.placement.scheduling import (
    Decision,
    ReliabilityPlacementConfig,
    Scheduler,
    SchedulingContext,
    no_space,
    unreachable,
)

MIN_FREE_MB = 128.0
EMPTY_SLOT = -1.0


class Hdfs3Rep:
    """Three replicas on the fastest nodes (the reference's ``hdfs_3_replications``)."""

    name = "hdfs_3rep"

    def schedule(
        self, cluster: Cluster, size_mb: float, target: float, ctx: SchedulingContext
    ) -> Decision:
        """Place one item."""
        order = cluster.by_write_bandwidth()
        free, p_fail = cluster.free, cluster.p_fail
        live = len(order)
        roomy = [pos for pos in range(live) if free[order[pos]] > MIN_FREE_MB][:3]
        # Fewer than three nodes with 128 MB free: the reference goes on with empty slots
        # (node index -1, failure probability -1, which only raises the survival sum).
        missing = 3 - len(roomy)
        chosen: list[int | None] = [*roomy, *[None] * missing]
        reliabilities = [float(p_fail[order[pos]]) for pos in roomy] + [EMPTY_SLOT] * missing
        worst_p, worst, best_p, best = -1.0, 0, float("inf"), 0
        swaps = 0
        while not meets(reliabilities, 1, target):
            if swaps > live - 3:
                raise unreachable(target, " with 3 replicas")
            for slot in range(3):
                if worst_p < reliabilities[slot]:
                    worst_p, worst = reliabilities[slot], slot
            for pos in range(live):
                node = order[pos]
                if pos not in chosen[:3] and p_fail[node] < best_p and free[node] > MIN_FREE_MB:
                    best_p, best = float(p_fail[node]), pos
            if best_p == float("inf"):
                raise unreachable(target, " with 3 replicas: no spare node")
            reliabilities[worst], chosen[worst] = best_p, best
            swaps += 1
        n, k = 3, 1
        if missing:
            # The reference then reads node -1, out of its array's bounds; in its runs that
            # slot never held the copy, and every node with 128 MB free is already chosen, so
            # nothing can take the spill and the item goes to three full copies.
            placed_on, amounts = self._three_full_copies(cluster, order, size_mb, target)
        else:
            placed_on = [pos for pos in chosen if pos is not None]
            amounts = [min(size_mb, float(free[order[pos]])) for pos in placed_on]
            rest = sum(size_mb - a for a in amounts)
            if rest != 0:
                placed = False
                for pos in range(live):
                    if pos in placed_on or free[order[pos]] <= MIN_FREE_MB:
                        continue
                    n, k = n + 1, k + 1
                    if n > ctx.limit(cluster):
                        raise no_space(size_mb, ": spilling replicas needs more nodes than allowed")
                    trial = [*reliabilities, float(p_fail[order[pos]])]
                    if not meets(trial, k, target):
                        n, k = n - 1, k - 1
                        continue
                    placed_on.append(pos)
                    reliabilities = trial
                    room = float(free[order[pos]])
                    if rest <= room:
                        amounts.append(rest)
                        placed = True
                        break
                    amounts.append(room)
                    rest -= room
                if not placed:
                    placed_on, amounts = self._three_full_copies(cluster, order, size_mb, target)
                    n, k = 3, 1
        if n > ctx.limit(cluster):
            raise no_space(size_mb, ": more replicas than nodes allowed")
        return Decision(n, k, tuple(order[pos] for pos in placed_on), tuple(amounts))

    @staticmethod
    def _three_full_copies(
        cluster: Cluster, order: list[int], size_mb: float, target: float
    ) -> tuple[list[int], list[float]]:
        """The first three positions (in bandwidth order) that meet the target and each hold S."""
        for triple in combinations(range(len(order)), 3):
            nodes = [order[pos] for pos in triple]
            if meets([float(cluster.p_fail[i]) for i in nodes], 1, target) and all(
                size_mb <= cluster.free[i] for i in nodes
            ):
                return list(triple), [size_mb] * 3
        raise no_space(size_mb, " as 3 full replicas")


class Hdfs3RepConfig(ReliabilityPlacementConfig):
    """HDFS 3-way replication on the fastest nodes."""

    kind: Literal["hdfs_3rep"] = "hdfs_3rep"

    def scheduler(self) -> Scheduler:
        """Create the scheduler."""
        return Hdfs3Rep()
