"""Reed-Solomon with Intel ISA-L through pyeclib: the recommended coder (faster than zfec)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import Field, model_validator

from components.coding.protocol import Coder, CodingConfig, need_k


class IsalCoder:
    """pyeclib's ISA-L backend; fragments carry pyeclib's own header (index and sizes)."""

    def __init__(self, k: int, m: int, technique: str) -> None:
        try:
            from pyeclib.ec_iface import ECDriver
        except ImportError as exc:
            raise ImportError(
                "coding=isal needs pyeclib with its ISA-L backend: pip install pyeclib "
                "(or use coding=zfec)"
            ) from exc
        self.k, self.m = k, m
        self.technique = technique
        self.name = f"isal({k},{m})"
        self._driver: Any = ECDriver(k=k, m=m - k, ec_type=f"isa_l_rs_{technique}")

    def encode(self, segment: bytes | memoryview) -> list[bytes | memoryview]:
        """Return m fragments: k data then m − k parity."""
        return list(self._driver.encode(_as_bytes(segment)))

    def decode(self, chunks: Mapping[int, bytes | memoryview], size: int) -> bytes:
        """Rebuild from any k fragments."""
        indices = need_k(chunks, self.k, self.m)
        data: bytes = self._driver.decode([bytes(chunks[i]) for i in indices])
        return data[:size]


class IsalConfig(CodingConfig):
    """Erasure coding with ISA-L (pyeclib): any ``k`` of ``m`` chunks rebuild a segment."""

    kind: Literal["isal"] = "isal"
    k: int = Field(4, ge=1, le=31, description="chunks needed to read a segment")
    m: int = Field(6, ge=2, le=32, description="chunks stored per segment (k < m ≤ 32)")
    technique: Literal["cauchy", "vand"] = Field("cauchy", description="ISA-L matrix")

    @model_validator(mode="after")
    def _k_below_m(self) -> Self:
        if self.k >= self.m:
            raise ValueError(f"k={self.k} ≥ m={self.m}: ISA-L needs 1 ≤ k < m ≤ 32")
        return self

    def build(self) -> Coder:
        """Create the coder."""
        return IsalCoder(self.k, self.m, self.technique)


def _as_bytes(segment: bytes | memoryview) -> bytes:
    """The segment as ``bytes``, which is all pyeclib takes.

    A view of a whole ``bytes`` object, as a one-segment put passes, is that object, not a copy.
    """
    if isinstance(segment, bytes):
        return segment
    if isinstance(segment.obj, bytes) and segment.nbytes == len(segment.obj):
        return segment.obj
    return bytes(segment)
