"""HDFS erasure coding (Reed-Solomon K data + P parity): EC(3,2) and EC(6,3) are its recipes."""

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


class HdfsRS:
    """K data + P parity chunks on the fastest nodes (the reference's ``hdfs_rs``)."""

    def __init__(self, data: int, parity: int) -> None:
        self.data, self.parity = data, parity
        self.name = f"hdfs_rs({data},{parity})"

    def schedule(
        self, cluster: Cluster, size_mb: float, target: float, ctx: SchedulingContext
    ) -> Decision:
        """Place one item."""
        n = self.data + self.parity
        if n > ctx.limit(cluster):
            raise too_wide(n, ctx.limit(cluster))
        return fixed_code(cluster, size_mb, target, n, self.data)


class HdfsRSConfig(ReliabilityPlacementConfig):
    """HDFS Reed-Solomon EC(k, p): ``k`` data + ``p`` parity chunks on the fastest nodes."""

    kind: Literal["hdfs_rs"] = "hdfs_rs"
    k: int = Field(6, ge=1, le=64, description="data chunks")
    p: int = Field(3, ge=0, le=64, description="parity chunks")

    def scheduler(self) -> Scheduler:
        """Create the scheduler."""
        return HdfsRS(self.k, self.p)
