"""Replication: r identical copies; any one decodes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field

from components.coding.protocol import Coder, CodingConfig, need_k


class ReplicationCoder:
    """``copies`` identical chunks per segment (k = 1, m = copies)."""

    k = 1

    def __init__(self, copies: int) -> None:
        self.m = copies
        self.name = f"replication({copies})"

    def encode(self, segment: bytes | memoryview) -> list[bytes | memoryview]:
        """Return ``m`` references to the segment (they are written, never mutated)."""
        return [segment] * self.m

    def decode(self, chunks: Mapping[int, bytes | memoryview], size: int) -> bytes:
        """Return any one copy."""
        (index,) = need_k(chunks, 1, self.m)
        return bytes(chunks[index])[:size]


class ReplicationConfig(CodingConfig):
    """Store ``copies`` full copies of each segment (HDFS-style)."""

    kind: Literal["replication"] = "replication"
    copies: int = Field(3, ge=1, le=256, description="copies per segment (m); any one reads")

    def build(self) -> Coder:
        """Create the coder."""
        return ReplicationCoder(self.copies)
