"""No coding: one chunk, the segment itself (the centralized baseline)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from components.coding.protocol import Coder, CodingConfig, need_k


class NoCoder:
    """One chunk per segment; no loss tolerated."""

    name = "none"
    k = 1
    m = 1

    def encode(self, segment: bytes | memoryview) -> list[bytes | memoryview]:
        """Return the segment as its only chunk."""
        return [segment]

    def decode(self, chunks: Mapping[int, bytes | memoryview], size: int) -> bytes:
        """Return chunk 0."""
        (index,) = need_k(chunks, 1, 1)
        return bytes(chunks[index])[:size]


class NoCodingConfig(CodingConfig):
    """Store each segment once, uncoded."""

    kind: Literal["none"] = "none"

    def build(self) -> Coder:
        """Create the coder."""
        return NoCoder()
