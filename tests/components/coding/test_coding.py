"""Property: any object, any (k, m), any m − k chunks missing → the same bytes back."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.coding.isal import IsalCoder
from components.coding.protocol import DecodeError
from components.coding.replication import ReplicationCoder
from components.coding.zfec import ZfecCoder


@st.composite
def coded_case(draw: st.DrawFn, max_m: int) -> tuple[bytes, int, int, list[int]]:
    m = draw(st.integers(1, max_m))
    k = draw(st.integers(1, m))
    data = draw(st.binary(max_size=4096))
    kept = draw(st.permutations(range(m)))[:k]  # drop any m - k chunks
    return data, k, m, sorted(kept)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(coded_case(max_m=40))
def test_zfec_any_k_chunks_decode(case: tuple[bytes, int, int, list[int]]) -> None:
    data, k, m, kept = case
    coder = ZfecCoder(k, m)
    chunks = coder.encode(data)
    assert len(chunks) == m
    assert coder.decode({i: bytes(chunks[i]) for i in kept}, len(data)) == data


@settings(max_examples=60, deadline=None, derandomize=True)
@given(coded_case(max_m=12))
def test_isal_any_k_chunks_decode(case: tuple[bytes, int, int, list[int]]) -> None:
    data, k, m, kept = case
    if k == m:
        m += 1  # ISA-L needs at least one parity chunk
    coder = IsalCoder(k, m, "cauchy")
    chunks = coder.encode(data)
    assert coder.decode({i: chunks[i] for i in kept}, len(data)) == data


def test_zfec_at_its_limit_and_too_few_chunks() -> None:
    coder = ZfecCoder(200, 256)
    data = bytes(range(256)) * 50
    chunks = coder.encode(data)
    assert coder.decode({i: chunks[i] for i in range(56, 256)}, len(data)) == data
    with pytest.raises(DecodeError, match="need 200 of 256"):
        coder.decode({i: chunks[i] for i in range(199)}, len(data))


def test_replication_reads_any_copy() -> None:
    coder = ReplicationCoder(3)
    assert coder.decode({2: coder.encode(b"abc")[2]}, 3) == b"abc"
