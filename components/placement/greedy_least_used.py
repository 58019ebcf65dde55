"""GreedyLeastUsed: the smallest stripe on the emptiest nodes that meets the target."""

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


class GreedyLeastUsed(FreeSpaceScheduler):
    """For N = 2 upward on the N freest nodes, the first N with a valid K that fits."""

    name = "greedy_least_used"

    def choose(
        self,
        cluster: Cluster,
        order: list[int],
        size_mb: float,
        target: float,
        ctx: SchedulingContext,
    ) -> Decision:
        """Place one item on the freest-first ``order``."""
        reliable = False
        for n in range(2, ctx.limit(cluster) + 1):
            k = self.reliability.max_k(cluster, order, n, target)
            if k is None:
                continue
            reliable = True
            if fits(cluster, order[:n], size_mb / k):
                return Decision(n, k, tuple(order[:n]))
        raise no_space(size_mb, " on the freest nodes") if reliable else unreachable(target)


class GreedyLeastUsedConfig(ReliabilityPlacementConfig):
    """GreedyLeastUsed: the smallest stripe on the emptiest nodes meeting the target."""

    kind: Literal["greedy_least_used"] = "greedy_least_used"

    def scheduler(self) -> Scheduler:
        """Create the scheduler."""
        return GreedyLeastUsed()
