"""DAOS object classes: EC 8+1 (≥ 10 nodes) or 4+1 (≥ 6), escalating when the target is missed.

Following the reference's code: with redundancy factor 1 it uses 8+1 or 4+1; if the target is
missed it moves to 8+2 or 4+2, then to 4-way and 6-way replication. Lack of space is final.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from components.placement._fixed_code import TargetMissed, fixed_code
from components.placement.cluster import Cluster
from components.placement.protocol import CannotPlace
from components.placement.scheduling import (
    Decision,
    ReliabilityPlacementConfig,
    Scheduler,
    SchedulingContext,
    too_wide,
)

REPLICATION = {3: (4, 1), 4: (6, 1)}


def daos_code(level: int, live: int, max_n: int) -> tuple[int, int] | None:
    """(N, K) at an escalation level (1, 2: erasure codes; 3, 4: replication)."""
    if level in REPLICATION:
        return REPLICATION[level]
    if live >= 10 and max_n > 6:
        return (9, 8) if level == 1 else (10, 8)
    if live >= 6:
        return (5, 4) if level == 1 else (6, 4)
    return None


class Daos:
    """DAOS's erasure-coded object classes with their escalation."""

    def __init__(self, redundancy: int) -> None:
        self.redundancy = redundancy
        self.name = f"daos(rf{redundancy})"

    def schedule(
        self, cluster: Cluster, size_mb: float, target: float, ctx: SchedulingContext
    ) -> Decision:
        """Place one item."""
        level = self.redundancy
        limit = ctx.limit(cluster)
        while True:
            code = daos_code(level, cluster.up_count, limit)
            if code is None:
                raise CannotPlace(f"no space: DAOS needs at least 6 live nodes, {limit} are up")
            n, k = code
            if n > limit:
                raise too_wide(n, limit)
            try:
                return fixed_code(cluster, size_mb, target, n, k)
            except TargetMissed:
                if level >= 4:
                    raise
                level += 1


class DaosConfig(ReliabilityPlacementConfig):
    """DAOS: EC 8+1 / 4+1 (redundancy 1) or 8+2 / 4+2 (2), escalating to replication."""

    kind: Literal["daos"] = "daos"
    redundancy: int = Field(1, ge=1, le=2, description="redundancy factor to start from")

    def scheduler(self) -> Scheduler:
        """Create the scheduler."""
        return Daos(self.redundancy)
