"""Reed-Solomon over GF(2^8) with zfec (k of m, 1 ≤ k ≤ m ≤ 256); zfec releases the GIL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import Field, model_validator

from components.coding.protocol import Coder, CodingConfig, need_k


class ZfecCoder:
    """Pads a segment to ``k`` equal blocks (views, no copy when it divides) and adds parity."""

    def __init__(self, k: int, m: int) -> None:
        import zfec

        self.k, self.m = k, m
        self.name = f"zfec({k},{m})"
        self._encoder: Any = zfec.Encoder(k, m)
        self._decoder: Any = zfec.Decoder(k, m)

    def encode(self, segment: bytes | memoryview) -> list[bytes | memoryview]:
        """Return the k data blocks followed by m − k parity blocks."""
        view = memoryview(segment).cast("B")
        block = max(1, -(-len(view) // self.k))
        if block * self.k != len(view):  # zero-pad the tail; decode trims to the size
            padded = bytearray(block * self.k)
            padded[: len(view)] = view
            view = memoryview(padded)
        blocks = [view[i * block : (i + 1) * block] for i in range(self.k)]
        return list(self._encoder.encode(blocks))

    def decode(self, chunks: Mapping[int, bytes | memoryview], size: int) -> bytes:
        """Rebuild from any k blocks; data blocks are used as they are when all are present."""
        indices = need_k(chunks, self.k, self.m)
        if indices == list(range(self.k)):
            primary = [chunks[i] for i in indices]
        else:
            primary = self._decoder.decode([chunks[i] for i in indices], indices)
        return b"".join(primary)[:size]


class ZfecConfig(CodingConfig):
    """Erasure coding with zfec: any ``k`` of ``m`` chunks rebuild a segment."""

    kind: Literal["zfec"] = "zfec"
    k: int = Field(4, ge=1, le=256, description="chunks needed to read a segment")
    m: int = Field(6, ge=1, le=256, description="chunks stored per segment (tolerates m − k lost)")

    @model_validator(mode="after")
    def _k_at_most_m(self) -> Self:
        if self.k > self.m:
            raise ValueError(f"k={self.k} > m={self.m}: need 1 ≤ k ≤ m ≤ 256")
        return self

    def build(self) -> Coder:
        """Create the coder."""
        return ZfecCoder(self.k, self.m)
