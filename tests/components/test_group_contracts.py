"""Every option the registry lists, built from its ``conf/`` file, honours its group's contract.

The lists come from the registry and ``conf/`` (``group_options``), never by hand: the storage
suite in ``test_storage.py`` and the coder properties below take every option the same way.
"""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.base import ComponentConfig
from components.coding.protocol import DecodeError
from components.placement.protocol import CannotPlace, NodeInfo, Placer
from components.protocols import GROUP_PROTOCOLS, check_provides
from framework import registry
from tests.components.group_options import composed, conf_files, conf_kind

MB = 2**20
# Options that need a service of their own to open: built and checked, not opened.
NOT_OPENED = {("events", "kafka"): "needs a Kafka broker (tests/components/events/test_events.py)"}


def test_every_group_declares_what_its_components_provide() -> None:
    assert set(registry.groups()) <= set(GROUP_PROTOCOLS)


@pytest.mark.parametrize("group", sorted(GROUP_PROTOCOLS))
def test_every_registered_option_has_a_conf_file(group: str) -> None:
    kinds = {conf_kind(group, option) for option in conf_files(group)}
    assert set(registry.options(group)) <= kinds


def _every_conf_option() -> list[tuple[str, str]]:
    return [(g, o) for g in sorted(GROUP_PROTOCOLS) for o in conf_files(g)]


def _test_overrides(group: str, option: str, s3_endpoint: str, tmp_path: Path) -> list[str]:
    """Where each option must point on this machine (a folder, the test S3 server)."""
    if group == "storage" and option == "local":
        return [f"storage.root={tmp_path}"]
    if group == "storage" and option == "s3":
        return [f"storage.endpoint_url={s3_endpoint}", "storage.bucket=loom-contract"]
    if group == "events" and option == "kafka":
        return ["events.bootstrap_servers=127.0.0.1:9"]
    return []


@pytest.mark.parametrize(("group", "option"), _every_conf_option())
def test_every_option_builds_and_opens_as_its_group_s_protocol(
    group: str, option: str, s3_endpoint: str, tmp_path: Path
) -> None:
    config = composed(group, option, *_test_overrides(group, option, s3_endpoint, tmp_path))
    built = config.build()
    with ExitStack() as stack:
        opened = built
        if isinstance(built, AbstractContextManager) and (group, option) not in NOT_OPENED:
            opened = stack.enter_context(built)
        check_provides(group, option, opened)


def test_a_component_that_is_not_its_group_s_protocol_is_named() -> None:
    with pytest.raises(TypeError, match=r"placement option 'odd' built object.*missing: .*place"):
        check_provides("placement", "odd", object())


# ----- coders: any k of m chunks give the bytes back; fewer is refused ---------------------


@functools.cache
def _coder_config(option: str) -> ComponentConfig:
    """Composed once per option: Hydra's compose, not the coder, is what costs per example."""
    return composed("coding", option)


@pytest.mark.parametrize("option", conf_files("coding"))
@settings(max_examples=40, deadline=None, derandomize=True)
@given(data=st.binary(max_size=3000), order=st.randoms(use_true_random=False))
def test_every_coder_decodes_from_any_k_chunks(option: str, data: bytes, order: object) -> None:
    coder = _coder_config(option).build()
    chunks = coder.encode(data)
    assert len(chunks) == coder.m and 1 <= coder.k <= coder.m
    indices = list(range(coder.m))
    order.shuffle(indices)  # type: ignore[attr-defined]
    kept = indices[: coder.k]
    assert coder.decode({i: bytes(chunks[i]) for i in kept}, len(data)) == data
    with pytest.raises(DecodeError):
        coder.decode({i: bytes(chunks[i]) for i in kept[:-1]}, len(data))


# ----- placers: Placer.place on the same node sets ------------------------------------------


def _nodes(seed: int, count: int = 14) -> list[NodeInfo]:
    """Nodes reliable and many enough that every placer's code fits and meets its target."""
    rng = np.random.default_rng(seed)
    return [
        NodeInfo(
            node_id=100 + i,  # ids are not positions
            capacity=int(rng.integers(200, 2000)) * MB,
            used=int(rng.integers(0, 100)) * MB,
            write_mb_s=float(rng.uniform(50, 500)),
            read_mb_s=float(rng.uniform(50, 500)),
            afr_pct=float(rng.uniform(0.1, 0.5)),
        )
        for i in range(count)
    ]


def _placer(option: str) -> Placer:
    placer = composed("placement", option).build()
    assert isinstance(placer, Placer)
    return placer


@pytest.mark.parametrize("option", conf_files("placement"))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_placer_places_on_distinct_live_nodes_with_room(option: str, seed: int) -> None:
    placer = _placer(option)
    nodes = _nodes(seed)
    down = {nodes[1].node_id, nodes[4].node_id}
    full = {nodes[7].node_id}
    nodes = [
        NodeInfo(**{**_fields(n), "up": n.node_id not in down}) for n in nodes if n.node_id != 107
    ] + [NodeInfo(**{**_fields(nodes[7]), "used": nodes[7].capacity})]
    size = 10 * MB
    placement = placer.place(size, nodes, n=5, k=3)
    chosen = placement.node_ids
    assert 1 <= placement.k <= placement.n == len(chosen)
    assert len(set(chosen)) == len(chosen)  # 11 nodes can take a chunk: no node twice
    assert set(chosen) <= {n.node_id for n in nodes} - down - full
    if not getattr(placer, "chooses_shape", False):
        assert (placement.n, placement.k) == (5, 3)  # a fixed placer keeps the asked shape


@pytest.mark.parametrize("option", conf_files("placement"))
def test_every_placer_refuses_when_no_node_can_take_a_chunk(option: str) -> None:
    nodes = [NodeInfo(**{**_fields(n), "used": n.capacity}) for n in _nodes(3)]
    with pytest.raises(CannotPlace):
        _placer(option).place(10 * MB, nodes, n=5, k=3)


def _fields(node: NodeInfo) -> dict[str, object]:
    return {name: getattr(node, name) for name in NodeInfo.__slots__}
