"""Random placement: n distinct nodes drawn uniformly (seeded)."""

from __future__ import annotations

import random
import threading
from typing import Literal

from pydantic import Field

from components.placement.base import NodeInfo, PlacementConfig, Placer, RankingPlacer


class RandomPlacer(RankingPlacer):
    """Draws the nodes from a seeded generator."""

    name = "random"

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

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
