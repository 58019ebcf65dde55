"""DynoStore's load balancing: the n up nodes with the lowest utility factor.

UF = (used + s) / capacity, where s is the item size (the reference code uses the whole
object's size for every chunk, so nodes are ranked by fullness after taking the item).
"""

from __future__ import annotations

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


class UtilityFactorPlacer:
    """Least-full-first after the item is added; ties go to the lower node id."""

    name = "utility_factor"

    def place(
        self,
        size: int,
        nodes: Sequence[NodeInfo],
        *,
        n: int,
        k: int,
        reliability: float | None = None,
    ) -> Placement:
        """Choose the ``n`` nodes with the lowest (used + size) / capacity."""
        candidates = fitting(nodes, chunk_bytes(size, k))
        candidates.sort(key=lambda node: ((node.used + size) / node.capacity, node.node_id))
        return Placement(n, k, spread(candidates, n, size, k))


class UtilityFactorConfig(PlacementConfig):
    """DynoStore's utility-factor load balancing (lowest (used + s) / capacity first)."""

    kind: Literal["utility_factor"] = "utility_factor"

    def build(self) -> Placer:
        """Create the placer."""
        return UtilityFactorPlacer()
