"""The ``placement`` group: which nodes hold an item's chunks, and with which (n, k).

``protocol.py`` holds what ``build()`` returns, the config base and the errors; each option
has its module; modules starting with ``_`` are internals.
"""

from components.placement.protocol import (
    CannotPlace,
    ChunkPlacement,
    NodeInfo,
    PlacementConfig,
    Placer,
    RankingPlacer,
)

__all__ = [
    "CannotPlace",
    "ChunkPlacement",
    "NodeInfo",
    "PlacementConfig",
    "Placer",
    "RankingPlacer",
]
