"""Random placement: n distinct nodes drawn uniformly (seeded)."""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from components.placement.base import (
    NodeInfo,
    Placement,
    PlacementConfig,
    Placer,
    chunk_bytes,
    fitting,
    spread,
)


class RandomPlacer:
    """Draws the nodes from a seeded generator."""

    name = "random"

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
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
        """Shuffle the nodes that can take a chunk and take ``n``."""
        candidates = fitting(nodes, chunk_bytes(size, k))
        with self._lock:
            self._rng.shuffle(candidates)
        return Placement(n, k, spread(candidates, n, size, k))


class RandomConfig(PlacementConfig):
    """Baseline: distinct nodes chosen at random."""

    kind: Literal["random"] = "random"
    seed: int = Field(0, ge=0, description="seed of the node draws")

    def build(self) -> Placer:
        """Create the placer."""
        return RandomPlacer(self.seed)
