"""DynoStore's load balancing: the n up nodes with the lowest utility factor.

UF = (used + s) / capacity, where s is the item size (the reference code uses the whole
object's size for every chunk, so nodes are ranked by fullness after taking the item).
"""

from __future__ import annotations

from typing import Literal

from components.placement.protocol import NodeInfo, PlacementConfig, Placer, RankingPlacer


class UtilityFactorPlacer(RankingPlacer):
    """Least-full-first after the item is added; ties go to the lower node id."""

    name = "utility_factor"

    def rank(self, candidates: list[NodeInfo], size: int) -> list[NodeInfo]:
        """Lowest (used + size) / capacity first."""
        return sorted(candidates, key=lambda n: ((n.used + size) / n.capacity, n.node_id))


class UtilityFactorConfig(PlacementConfig):
    """DynoStore's utility-factor load balancing (lowest (used + s) / capacity first)."""

    kind: Literal["utility_factor"] = "utility_factor"

    def build(self) -> Placer:
        """Create the placer."""
        return UtilityFactorPlacer()
