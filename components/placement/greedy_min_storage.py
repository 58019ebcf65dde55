"""GreedyMinStorage: on the emptiest nodes, the (N, K) that stores the fewest bytes."""

from __future__ import annotations

from typing import Literal

from components.placement.cluster import Cluster
from components.placement.scheduling import (
    Decision,
    FreeSpaceScheduler,
    ReliabilityPlacementConfig,
    Scheduler,
    SchedulingContext,
    fits,
    no_space,
    unreachable,
)


class GreedyMinStorage(FreeSpaceScheduler):
    """For N = max_N down to 2 on the N freest nodes, keep the valid (N, K) of least N·S/K.

    Ties keep the larger N (found first), as the reference's strict comparison does.
    """

    name = "greedy_min_storage"

    def choose(
        self,
        cluster: Cluster,
        order: list[int],
        size_mb: float,
        target: float,
        ctx: SchedulingContext,
    ) -> Decision:
        """Place one item on the freest-first ``order``."""
        best: tuple[float, int, int] | None = None
        reliable = False
        for n in range(ctx.limit(cluster), 1, -1):
            k = self.reliability.max_k(cluster, order, n, target)
            if k is None:
                continue
            reliable = True
            if not fits(cluster, order[:n], size_mb / k):
                continue
            stored = n * (size_mb / k)
            if best is None or stored < best[0]:
                best = (stored, n, k)
        if best is None:
            raise no_space(size_mb, " on the freest nodes") if reliable else unreachable(target)
        _, n, k = best
        return Decision(n, k, tuple(order[:n]))


class GreedyMinStorageConfig(ReliabilityPlacementConfig):
    """GreedyMinStorage: least storage overhead on the freest nodes meeting the target."""

    kind: Literal["greedy_min_storage"] = "greedy_min_storage"

    def scheduler(self) -> Scheduler:
        """Create the scheduler."""
        return GreedyMinStorage()
