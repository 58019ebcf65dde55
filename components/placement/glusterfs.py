"""GlusterFS dispersed volumes: N = 6 chunks of which K = 4 are data (the paper's "EC(4,2)")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from components.placement._fixed_code import fixed_code
from components.placement.cluster import Cluster
from components.placement.scheduling import (
    Decision,
    ReliabilityPlacementConfig,
    Scheduler,
    SchedulingContext,
    too_wide,
)


class GlusterFS:
    """A fixed (N, K) dispersed volume on the fastest nodes (the reference's ``glusterfs``)."""

    def __init__(self, n: int, k: int) -> None:
        self.n, self.k = n, k
        self.name = f"glusterfs({n},{k})"

    def schedule(
        self, cluster: Cluster, size_mb: float, target: float, ctx: SchedulingContext
    ) -> Decision:
        """Place one item."""
        if self.n > ctx.limit(cluster):
            raise too_wide(self.n, ctx.limit(cluster))
        return fixed_code(cluster, size_mb, target, self.n, self.k)


class GlusterFSConfig(ReliabilityPlacementConfig):
    """GlusterFS dispersed volume: ``n`` chunks, any ``k`` of which rebuild the item."""

    kind: Literal["glusterfs"] = "glusterfs"
    n: int = Field(6, ge=2, le=64, description="chunks per item")
    k: int = Field(4, ge=1, le=63, description="data chunks")

    def scheduler(self) -> Scheduler:
        """Create the scheduler."""
        if self.k >= self.n:
            raise ValueError(f"glusterfs needs k < n, got k={self.k}, n={self.n}")
        return GlusterFS(self.n, self.k)
