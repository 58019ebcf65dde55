"""Random placement: n distinct nodes drawn uniformly (seeded)."""

from __future__ import annotations

import random
import threading
from typing import Literal

from pydantic import Field

from components.placement.cluster import Cluster
from components.placement.protocol import NodeInfo, PlacementConfig, Placer, RankingPlacer
from components.placement.reliability import meets
from components.placement.scheduling import (
    Decision,
    SchedulingContext,
    fits,
    no_space,
    unreachable,
)


class RandomPlacer(RankingPlacer):
    """Draws the nodes from a seeded generator."""

    name = "random"

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.scheduler = RandomScheduler(seed)  # the simulator's D-Rex-style random

    def rank(self, candidates: list[NodeInfo], size: int) -> list[NodeInfo]:
        """The candidates shuffled."""
        with self._lock:
            self._rng.shuffle(candidates)
        return candidates


class RandomConfig(PlacementConfig):
    """Baseline: distinct nodes chosen at random."""

    kind: Literal["random"] = "random"
    seed: int = Field(0, ge=0, description="seed of the node draws")

    def build(self) -> Placer:
        """Create the placer."""
        return RandomPlacer(self.seed)


class RandomScheduler:
    """D-Rex's random baseline: random N, K and nodes until the target is met and they fit.

    The reference draws N from the sizes not tried yet, K in [1, N − 1] and N random nodes,
    redrawing while the target is missed. Unlike the reference (which reseeds from the clock
    and then charges the first N nodes of its array rather than the drawn ones) the draws
    here are seeded and the drawn nodes are the ones used; attempts are bounded.
    """

    name = "random"
    attempts = 1000

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def schedule(
        self, cluster: Cluster, size_mb: float, target: float, ctx: SchedulingContext
    ) -> Decision:
        """Place one item."""
        live = [i for i in cluster.order if cluster.up[i]]
        limit = ctx.limit(cluster)
        untried = list(range(2, limit + 1))
        reliable = False
        for _ in range(self.attempts):
            if not untried:
                break
            n = untried.pop(self._rng.randrange(len(untried)))
            k = self._rng.randint(1, n - 1)
            nodes = self._rng.sample(live, n)
            if not meets(cluster.p_fail[nodes], k, target):
                continue
            reliable = True
            if fits(cluster, nodes, size_mb / k):
                return Decision(n, k, tuple(nodes))
        raise no_space(size_mb, " in random draws") if reliable else unreachable(target)
