"""Round robin: each item starts one node after where the previous one started."""

from __future__ import annotations

import itertools
import threading
from typing import Literal

from components.placement.protocol import NodeInfo, PlacementConfig, Placer, RankingPlacer


class RoundRobinPlacer(RankingPlacer):
    """Rotates the starting node over the nodes that can take a chunk."""

    name = "round_robin"

    def __init__(self) -> None:
        self._starts = itertools.count()
        self._lock = threading.Lock()

    def rank(self, candidates: list[NodeInfo], size: int) -> list[NodeInfo]:
        """The candidates rotated by one more place than last time."""
        with self._lock:
            start = next(self._starts)
        if not candidates:
            return candidates
        shift = start % len(candidates)
        return candidates[shift:] + candidates[:shift]


class RoundRobinConfig(PlacementConfig):
    """Baseline: rotate over the nodes, ignoring how full they are."""

    kind: Literal["round_robin"] = "round_robin"

    def build(self) -> Placer:
        """Create the placer."""
        return RoundRobinPlacer()
