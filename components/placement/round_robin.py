"""Round robin: each item starts one node after where the previous one started."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Literal

from components.placement.base import (
    NodeInfo,
    Placement,
    PlacementConfig,
    Placer,
    chunk_bytes,
    fitting,
    spread,
)


class RoundRobinPlacer:
    """Rotates the starting node over the nodes that can take a chunk."""

    name = "round_robin"

    def __init__(self) -> None:
        self._next = 0
        self._lock = threading.Lock()

    def place(
        self,
        size: int,
        nodes: Sequence[NodeInfo],
        *,
        n: int,
        k: int,
        reliability: float | None = None,
    ) -> Placement:
        """Take ``n`` consecutive nodes from the rotating start."""
        candidates = fitting(nodes, chunk_bytes(size, k))
        with self._lock:
            start = self._next
            self._next += 1
        if candidates:
            shift = start % len(candidates)
            candidates = candidates[shift:] + candidates[:shift]
        return Placement(n, k, spread(candidates, n, size, k))


class RoundRobinConfig(PlacementConfig):
    """Baseline: rotate over the nodes, ignoring how full they are."""

    kind: Literal["round_robin"] = "round_robin"

    def build(self) -> Placer:
        """Create the placer."""
        return RoundRobinPlacer()
