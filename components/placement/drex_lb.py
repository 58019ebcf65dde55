"""D-Rex LB: the fewest parity chunks, then the data-chunk count that best balances free space.

Nodes are sorted by free space (largest first) and ``avg`` is their mean free space. For
P = 1, 2, … and D = 2 … max_N − P − 1, a candidate takes the first D + P nodes, if they meet
the target with K = D and each has room for S/D. Its balance penalty is

    Σ_{j < D+P} |free_j − S/D − avg| + Σ_{j ≥ D+P} |free_j − avg|

The first P with any candidate wins, with its least-penalty D (N = D + P, K = D). As in the
reference code, D + P stays below max_N.
"""

from __future__ import annotations

from typing import Literal

from components.placement.cluster import Cluster
from components.placement.reliability import as_threshold
from components.placement.scheduling import (
    Decision,
    FreeSpaceScheduler,
    ReliabilityPlacementConfig,
    Scheduler,
    SchedulingContext,
    no_space,
    unreachable,
)


class DrexLB(FreeSpaceScheduler):
    """D-Rex's load-balancing scheduler (the reference's ``balance_penalty_algorithm``)."""

    name = "drex_lb"

    def choose(
        self,
        cluster: Cluster,
        order: list[int],
        size_mb: float,
        target: float,
        ctx: SchedulingContext,
    ) -> Decision:
        """Place one item on the freest-first ``order``."""
        free = [float(cluster.free[i]) for i in order]
        average = sum(free) / len(free)
        # Running minimum of the first C nodes' free space: "each has room" in O(1).
        room = list(free)
        for j in range(1, len(room)):
            room[j] = min(room[j - 1], room[j])
        rest = [abs(f - average) for f in free]
        cdfs = self.reliability.cdfs(cluster, order)
        threshold = as_threshold(target)
        max_n = ctx.limit(cluster)
        reliable = False
        for parity in range(1, max_n - 1):
            best_d, best_penalty = 0, float("inf")
            for data in range(2, max_n - parity):
                width = data + parity
                if cdfs[width][parity] < threshold:
                    continue
                reliable = True
                chunk = size_mb / data
                if room[width - 1] < chunk:
                    continue
                penalty = 0.0  # summed in the reference's order (ties must match)
                for j in range(width):
                    penalty += abs(free[j] - chunk - average)
                for j in range(width, len(free)):
                    penalty += rest[j]
                if penalty < best_penalty:
                    best_d, best_penalty = data, penalty
            if best_d:
                n = best_d + parity
                return Decision(n, best_d, tuple(order[:n]))
        raise no_space(size_mb, " with balanced stripes") if reliable else unreachable(target)


class DrexLBConfig(ReliabilityPlacementConfig):
    """D-Rex LB: fewest parity chunks, then the stripe that best balances free space."""

    kind: Literal["drex_lb"] = "drex_lb"

    def scheduler(self) -> Scheduler:
        """Create the scheduler."""
        return DrexLB()
