"""Payloads of three kinds, and the map and reduce tasks the data-flow benchmark runs on them.

Dask moves numpy arrays without copies (out-of-band pickle buffers), bytes nearly so, and
pickles other objects whole; which kind a task passes decides whether proxies help. The
functions live here, in a package module, so every worker process can import them.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import numpy as np

PayloadKind = Literal["numpy", "bytes", "object"]


class Opaque:
    """A Python object holding bytes: what Dask can only pickle whole."""

    __slots__ = ("blob", "tag")

    def __init__(self, blob: bytes, tag: int) -> None:
        self.blob = blob
        self.tag = tag

    def __getstate__(self) -> tuple[bytes, int]:
        return self.blob, self.tag

    def __setstate__(self, state: tuple[bytes, int]) -> None:
        self.blob, self.tag = state


def make_payload(kind: PayloadKind, size: int, seed: int) -> Any:
    """``size`` bytes of seeded data, as an array, bytes or an opaque object."""
    raw = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)
    if kind == "numpy":
        return raw
    if kind == "bytes":
        return raw.tobytes()
    return Opaque(raw.tobytes(), seed)


def _view(payload: Any) -> bytes | np.ndarray:
    if isinstance(payload, Opaque):
        return payload.blob
    return payload  # type: ignore[no-any-return]


def transform(payload: Any) -> Any:
    """Map: a payload of the same kind and size that depends on every byte of the input."""
    data = np.frombuffer(_view(payload), dtype=np.uint8)
    out = data ^ np.uint8(hashlib.blake2b(data[:65536].tobytes()).digest()[0])
    out = np.roll(out, 1)
    if isinstance(payload, np.ndarray):
        return out
    if isinstance(payload, Opaque):
        return Opaque(out.tobytes(), payload.tag + 1)
    return out.tobytes()


def checksum(*payloads: Any) -> str:
    """Reduce: one digest of every payload, in order."""
    digest = hashlib.sha256()
    for payload in payloads:
        view = _view(payload)
        digest.update(view.tobytes() if isinstance(view, np.ndarray) else view)
    return digest.hexdigest()


def transform_resolved(payload: Any) -> Any:
    """:func:`transform` of a value that may arrive as a proxy (ProxyStore's Dask plugin)."""
    from components.dataflow.futures import resolve

    return transform(resolve(payload))


def checksum_resolved(*payloads: Any) -> str:
    """:func:`checksum` of values that may arrive as proxies."""
    from components.dataflow.futures import resolve

    return checksum(*[resolve(p) for p in payloads])
