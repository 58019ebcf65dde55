"""Coders of another shape: when a placer chooses (n, k) per object, the fabric codes with them."""

from __future__ import annotations

from components.coding.isal import IsalCoder
from components.coding.protocol import Coder
from components.coding.replication import ReplicationCoder
from components.coding.zfec import ZfecCoder

ISAL_MAX_M = 32


def reshape(coder: Coder, k: int, m: int) -> Coder:
    """A coder like ``coder`` but producing ``m`` chunks, any ``k`` of which decode.

    k = 1 is replication; ISA-L keeps its technique while m ≤ 32; anything else uses zfec.

    Raises:
        ValueError: the shape is impossible (k < 1, k > m, m > 256).

    """
    if (k, m) == (coder.k, coder.m):
        return coder
    if not 1 <= k <= m <= 256:
        raise ValueError(f"cannot code with k={k}, m={m}: need 1 ≤ k ≤ m ≤ 256")
    if k == 1:
        return ReplicationCoder(m)
    if isinstance(coder, IsalCoder) and k < m <= ISAL_MAX_M:
        return IsalCoder(k, m, coder.technique)
    return ZfecCoder(k, m)
