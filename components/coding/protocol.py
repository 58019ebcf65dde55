"""The ``coding`` group: turn a segment into m chunks, any k of which give it back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from components.base import ComponentConfig


class DecodeError(ValueError):
    """Fewer than k usable chunks were given to a decoder."""


@runtime_checkable
class Coder(Protocol):
    """An erasure code (or replication): ``encode`` gives ``m`` chunks, any ``k`` decode.

    Attributes:
        name: Short label for records (``zfec(4,6)``).
        k: Chunks needed to decode.
        m: Chunks produced per segment.

    """

    name: str
    k: int
    m: int

    def encode(self, segment: bytes | memoryview) -> list[bytes | memoryview]:
        """Code one segment into ``m`` chunks (index = position in the list)."""

    def decode(self, chunks: Mapping[int, bytes | memoryview], size: int) -> bytes:
        """Rebuild a segment of ``size`` bytes from at least ``k`` chunks keyed by index."""


class CodingConfig(ComponentConfig):
    """Base of coder configs."""

    def build(self) -> Coder:
        """Create the coder."""
        raise NotImplementedError


def need_k(chunks: Mapping[int, object], k: int, m: int) -> list[int]:
    """The first ``k`` valid chunk indices, or :class:`DecodeError` naming what is missing."""
    indices = sorted(i for i in chunks if 0 <= i < m)
    if len(indices) < k:
        raise DecodeError(f"need {k} of {m} chunks to decode, got {len(indices)}: {indices}")
    return indices[:k]
