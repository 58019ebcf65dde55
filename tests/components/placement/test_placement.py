"""D-Rex placement: reliability model, schedulers, simulator, and the reference's numbers."""

from __future__ import annotations

import csv
import itertools
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from components.placement.cluster import Cluster, NodeSetError, NodeSpec, read_nodes
from components.placement.costs import CodingTimes
from components.placement.daos import Daos
from components.placement.drex_lb import DrexLB, DrexLBConfig
from components.placement.drex_sc import DrexSC, DrexSCConfig, pareto_front
from components.placement.glusterfs import GlusterFS
from components.placement.greedy_least_used import GreedyLeastUsed
from components.placement.greedy_min_storage import GreedyMinStorage
from components.placement.hdfs_3rep import Hdfs3Rep
from components.placement.hdfs_rs import HdfsRS
from components.placement.protocol import CannotPlace, NodeInfo
from components.placement.random import RandomScheduler
from components.placement.reliability import max_k, meets, survival_cdf
from components.placement.scheduling import Scheduler, SchedulingContext
from components.scenarios.placement_simulation import PlacementSimulationConfig
from components.scenarios.placement_simulator import Simulator
from components.scenarios.placement_workload import WorkloadError, read_workload

DATA = Path(__file__).resolve().parents[3] / "data" / "drex"
TIMES = CodingTimes.load(DATA / "ec_times")
MOST_USED = read_nodes(DATA / "nodes" / "10_most_used_nodes.csv")
MEVA = DATA / "workloads" / "MEVA_merged.csv"
TARGETS = ("0.9", "0.99", "0.999", "0.9999", "0.99999")
REFERENCE = {
    (row["repetitions"], row["reliability"], row["algorithm"]): row
    for row in csv.DictReader((DATA / "reference" / "scenario_A_small.csv").open())
}
SCHEDULERS: dict[str, type[Scheduler] | object] = {
    "DRexSC": DrexSC,
    "DRexLB": DrexLB,
    "GreedyMinStorage": GreedyMinStorage,
    "GreedyLeastUsed": GreedyLeastUsed,
    "HDFS_3rep": Hdfs3Rep,
    "EC_3_2": lambda: HdfsRS(3, 2),
    "EC_6_3": lambda: HdfsRS(6, 3),
    "GlusterFS_6_4": lambda: GlusterFS(6, 4),
    "DAOS_1_0": lambda: Daos(1),
}


def _simulate(name: str, replay: int, target: float) -> Simulator:
    make = SCHEDULERS[name]
    scheduler = make()  # type: ignore[operator]
    workload = read_workload(MEVA, replay, target, seed=0)
    sim = Simulator(
        Cluster.from_specs(MOST_USED), scheduler, SchedulingContext(coding_times=TIMES), TIMES
    )
    sim.run(workload)
    return sim


def _brute_force_survival(p: list[float], tolerated: int) -> float:
    total = 0.0
    for failed in itertools.product((0, 1), repeat=len(p)):
        if sum(failed) <= tolerated:
            chance = 1.0
            for down, q in zip(failed, p, strict=True):
                chance *= q if down else 1 - q
            total += chance
    return total


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=8), st.integers(0, 8))
def test_survival_matches_brute_force_enumeration(p: list[float], tolerated: int) -> None:
    tolerated = min(tolerated, len(p))
    assert survival_cdf(p)[tolerated] == pytest.approx(_brute_force_survival(p, tolerated))


def test_max_k_edge_cases() -> None:
    assert max_k([0.01, 0.01], 0.5) is None  # N = 2: K would have to be 1 (not proposed)
    assert max_k([0.01] * 3, 0.9) == 2
    assert max_k([0.5] * 4, 0.999999) is None  # unreachable
    assert max_k([0.0] * 6, 0.99999) == 5  # perfect nodes: the widest stripe
    # The target is compared as a 32-bit float, like the reference.
    assert meets([0.01] * 3, 2, 0.9997) is True


def _cluster(*nodes: tuple[float, float, float]) -> Cluster:
    """Nodes as (capacity MB, write MB/s, AFR %)."""
    return Cluster.from_specs([NodeSpec(i, c, w, w, a) for i, (c, w, a) in enumerate(nodes)])


CTX = SchedulingContext(coding_times=TIMES)


def test_greedy_schedulers_on_a_hand_worked_case() -> None:
    # Five equal, reliable nodes but node 4 is nearly full: at 0.99, N = 4 gives K = 3.
    cluster = _cluster((1000, 100, 1), (1000, 100, 1), (1000, 100, 1), (1000, 100, 1), (5, 100, 1))
    least = GreedyLeastUsed().schedule(cluster, 30.0, 0.99, CTX)
    assert (least.n, least.k) == (3, 2)  # the smallest stripe meeting the target
    assert set(least.nodes) <= {0, 1, 2, 3}
    least_storage = GreedyMinStorage().schedule(cluster, 30.0, 0.99, CTX)
    assert (least_storage.n, least_storage.k) == (4, 3)  # 40 MB beats 45 (3,2) and (5,4) misfits
    assert 4 not in least_storage.nodes


def test_drex_lb_prefers_one_parity_chunk_and_balances() -> None:
    cluster = _cluster(*[(1000, 100, 0.5)] * 6)
    decision = DrexLB().schedule(cluster, 100.0, 0.99, CTX)
    assert decision.n - decision.k == 1  # the smallest P that admits a solution
    assert decision.n < 6  # D + P stays below max_N, as in the reference


def test_fixed_codes_swap_unreliable_nodes_and_daos_escalates() -> None:
    # The fastest node is unreliable; EC(4,1) swaps it for the reliable spare.
    cluster = _cluster(
        (1000, 500, 40),
        (1000, 100, 0.1),
        (1000, 90, 0.1),
        (1000, 80, 0.1),
        (1000, 70, 0.1),
        (1000, 60, 0.1),
    )
    decision = HdfsRS(4, 1).schedule(cluster, 10.0, 0.9999, CTX)
    assert 0 not in decision.nodes and len(set(decision.nodes)) == 5
    daos = Daos(1).schedule(_cluster(*[(1000, 100, 5)] * 6), 10.0, 0.9999, CTX)
    assert (daos.n, daos.k) in {(6, 4), (4, 1), (6, 1)}  # 4+1 missed the target
    with pytest.raises(CannotPlace, match="no space"):
        GlusterFS(6, 4).schedule(_cluster(*[(1, 100, 1)] * 6), 10.0, 0.9, CTX)


def test_hdfs_3rep_spills_a_copy_that_does_not_fit() -> None:
    cluster = _cluster(
        (1000, 300, 0.1), (50 + 128.5, 200, 0.1), (1000, 100, 0.1), (1000, 90, 0.1), (1000, 80, 0.1)
    )
    decision = Hdfs3Rep().schedule(cluster, 300.0, 0.9, CTX)
    assert decision.amounts is not None
    assert sum(decision.amounts) == pytest.approx(900.0)  # three full copies' worth
    assert decision.n == 4  # one extra node took the overflow


def test_hdfs_3rep_with_two_roomy_nodes_makes_three_full_copies() -> None:
    # Only nodes 0 and 2 have 128 MB free. The reference goes on with an empty third slot,
    # which never holds the copy, and ends in the first three nodes that each hold one.
    cluster = _cluster((1000, 300, 1), (100, 250, 1), (1000, 200, 1), (50, 150, 1), (20, 100, 1))
    decision = Hdfs3Rep().schedule(cluster, 30.0, 0.9, CTX)
    assert (decision.n, decision.k, decision.nodes) == (3, 1, (0, 1, 2))
    assert decision.amounts == (30.0, 30.0, 30.0)
    with pytest.raises(CannotPlace, match=r"no space: .* as 3 full replicas"):
        Hdfs3Rep().schedule(cluster, 150.0, 0.9, CTX)  # node 1 cannot hold a full copy


def test_sc_returns_a_pareto_optimal_subset() -> None:
    cluster = Cluster.from_specs(MOST_USED)
    cluster.min_item_mb = 50.0
    CTX.nearest.update(100.0)
    decision = DrexSC().schedule(cluster, 100.0, 0.999, CTX)
    assert meets(cluster.p_fail[list(decision.nodes)], decision.k, 0.999)
    assert len(set(decision.nodes)) == decision.n


def test_pareto_front_against_brute_force() -> None:
    rng = np.random.default_rng(3)
    points = np.round(rng.random((300, 3)) * 20)  # many ties
    front = set(pareto_front(points).tolist())
    expected = {
        i for i, p in enumerate(points) if not any((q <= p).all() and (q < p).any() for q in points)
    }
    assert front == expected


def test_random_scheduler_is_deterministic_with_a_seed() -> None:
    def draws(seed: int) -> list[tuple[int, ...]]:
        cluster = Cluster.from_specs(MOST_USED)
        scheduler = RandomScheduler(seed)
        return [scheduler.schedule(cluster, 10.0, 0.99, CTX).nodes for _ in range(20)]

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)


@pytest.mark.parametrize("name", ["DRexLB", "GreedyLeastUsed", "DAOS_1_0", "HDFS_3rep"])
def test_simulator_invariants(name: str) -> None:
    target = 0.9999
    sim = _simulate(name, 1, target)
    result = sim.result
    assert result.items_stored + result.items_rejected == result.items_submitted == 4157
    assert (sim.cluster.free >= -1e-6).all()  # no node above capacity
    records = result.records
    for nodes, k, outcome in zip(records.nodes, records.k, records.outcome, strict=True):
        if outcome == "stored" and name != "HDFS_3rep":
            ids = [int(i) for i in nodes.split()]
            assert meets(sim.cluster.p_fail[ids], k, target)


def test_simulator_fills_up_and_rejects_on_a_small_cluster() -> None:
    cluster = Cluster.from_specs([NodeSpec(i, 60_000, 100, 100, 1.0) for i in range(6)])
    sim = Simulator(cluster, GreedyLeastUsed(), SchedulingContext(coding_times=TIMES), TIMES)
    result = sim.run(read_workload(MEVA, 1, 0.99, seed=0))
    assert result.items_rejected > 0 and result.items_stored > 0
    assert result.items_stored + result.items_rejected == 4157
    assert result.storage_used_mb <= 6 * 60_000 + 1e-6


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_reproduces_the_reference_simulator_one_replay(name: str, target: str) -> None:
    reference = REFERENCE[("1", target, name)]
    result = _simulate(name, 1, float(target)).result
    assert result.items_stored == int(reference["items_stored"])
    assert f"{result.data_stored_mb:.3f}" == reference["size_stored_MB"]
    assert f"{result.storage_used_mb:.3f}" == reference["total_storage_used_MB"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "target"),
    [("DAOS_1_0", "0.9999"), ("GreedyMinStorage", "0.99999"), ("DRexLB", "0.9999")],
)
def test_reproduces_the_reference_simulator_25_replays(name: str, target: str) -> None:
    reference = REFERENCE[("25", target, name)]
    result = _simulate(name, 25, float(target)).result
    assert result.items_stored == int(reference["items_stored"])  # DAOS rejects 1250 here
    assert f"{result.storage_used_mb:.3f}" == reference["total_storage_used_MB"]


def test_reliability_placer_serves_the_storage_fabric() -> None:
    placer = DrexLBConfig(reliability=0.999).build()
    nodes = [NodeInfo(i, 10**9, 0, True, 100.0, 100.0, 1.0) for i in range(6)]
    placement = placer.place(8 * 2**20, nodes, n=6, k=4)
    assert len(set(placement.node_ids)) == placement.n and placement.k >= 2
    bare = [NodeInfo(i, 10**9, 0) for i in range(6)]
    with pytest.raises(CannotPlace, match="afr_pct"):
        placer.place(8 * 2**20, bare, n=6, k=4)


def test_bad_node_sets_and_workloads_name_the_problem(tmp_path: Path) -> None:
    header = "id,storage_size,write_bandwidth,read_bandwidth,annual_failure_rate\n"
    cases = {
        "id,storage_size,write_bandwidth\n0,10,10\n": "missing column",
        header + "0,-5,100,100,1\n": "capacity -5.0 MB must be > 0",
        header + "0,100,100,100,140\n": "within \\[0, 100\\] percent",
        header: "empty",
    }
    for i, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"nodes{i}.csv"
        path.write_text(text)
        with pytest.raises(NodeSetError, match=message):
            read_nodes(path)
    bad_workload = tmp_path / "w.csv"
    bad_workload.write_text("id,size,when\n1,2,3\n")
    with pytest.raises(WorkloadError, match="submit_time"):
        read_workload(bad_workload, 1, 0.9, 0)


BAD_NODE = {"node_id": 0, "capacity_mb": -1, "write_mb_s": 1, "read_mb_s": 1, "afr_pct": 1}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"reliability": 1.0}, "strictly between 0 and 1"),
        ({"reliability": 0.0}, "strictly between 0 and 1"),
        ({"nodes": "no/such/nodes.csv"}, "nodes='no/such/nodes.csv': no such file"),
        ({"node_list": []}, "node_list is empty"),
        ({"node_list": [BAD_NODE]}, "must be > 0"),
        ({"failures": {"kind": "sometimes"}}, "failures"),
    ],
)
def test_bad_simulation_configs_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PlacementSimulationConfig(**overrides)  # type: ignore[arg-type]


def test_drex_places_live_objects_in_the_fabric_with_their_own_n_and_k(tmp_path: Path) -> None:
    from components.coding.isal import IsalConfig
    from components.storage.container import ContainerSpec, LinkSpec
    from components.storage.mixed import MixedStorageConfig

    containers = [
        ContainerSpec(
            url=f"memory://loom-test-drex/c{i}",
            name=f"c{i}",
            capacity_mb=400,
            afr_pct=afr,
            link=LinkSpec(bandwidth_mb_s=bw),
        )
        for i, (afr, bw) in enumerate(
            [
                (1.35, 281),
                (0.8, 209),
                (0.97, 208),
                (1.18, 197),
                (1.8, 193),
                (0.64, 190),
                (0.31, 168),
                (1.84, 164),
            ]
        )
    ]
    config = MixedStorageConfig(containers=containers, segment_size_mb=0.25)
    placer = DrexLBConfig(reliability=0.999).build()
    with (
        config.build() as network,
        network.fabric(IsalConfig(k=4, m=6).build(), placer, tmp_path / "c.sqlite") as fabric,
    ):
        store = fabric.connect(*next(iter(fabric.tenants.items())))
        data = np.random.default_rng(7).bytes(1_000_000)
        loose = store.put("cat", "loose", data, reliability=0.9)
        strict = store.put("cat", "strict", data, reliability=0.9999999)
        assert (loose.m - loose.k) < (strict.m - strict.k)  # more parity for the higher target
        for stat in (loose, strict):
            assert all(len(set(seg)) == stat.m for seg in stat.placement)  # distinct containers
            assert meets(
                [
                    1 - np.exp(-c.spec.afr_pct / 100)
                    for c in fabric.containers
                    if c.name in stat.placement[0]
                ],
                stat.k,
                0.9 if stat is loose else 0.9999999,
            )
        # Lose as many containers as the strict object tolerates: it still reads back.
        for name in strict.placement[0][: strict.m - strict.k]:
            fabric.container(name).take_down()
        assert store.get("cat", "strict") == data


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_failures_recipe_re_places_a_lost_nodes_items(workdir: Path) -> None:
    import json

    from framework.cli import main

    status = main(
        [
            "run",
            "recipe=drex/failures",
            "placement=drex_lb",
            "scenario.replay=1",
            "scenario.failures.item=1000",
        ]
    )
    assert status == 0
    (run,) = Path("results", "drex", "failures").glob("*/job-*/metrics.json")  # a sweep
    metrics = json.loads(run.read_text())["aggregate"]
    assert metrics["nodes_failed"] == 1
    assert metrics["items_replaced"] > 0 and metrics["items_lost"] == 0
    assert metrics["items_stored"] + metrics["items_rejected"] == 4157
    (trial,) = run.parent.glob("trial-*")
    assert (trial / "items.csv.gz").is_file() and (trial / "storage_over_time.png").is_file()


def test_trace_failures_take_nodes_down_at_their_time(tmp_path: Path) -> None:
    from components.scenarios.placement_simulation import _Trace

    trace = tmp_path / "failures.csv"
    trace.write_text("id,failed_time(s)\n1,100\n6,5000\n")
    cluster = Cluster.from_specs(MOST_USED)
    sim = Simulator(
        cluster, GreedyLeastUsed(), SchedulingContext(coding_times=TIMES), TIMES, _Trace(trace)
    )
    result = sim.run(read_workload(MEVA, 1, 0.99, seed=0))
    assert result.nodes_failed == 2 and not cluster.up[1] and not cluster.up[6]
    assert result.items_stored + result.items_rejected == 4157
    # The lost node's items were placed again, never back on a failed node.
    replaced = [
        n.split()
        for n, o in zip(result.records.nodes, result.records.outcome, strict=True)
        if o == "replaced"
    ]
    assert result.items_replaced == len(replaced) > 0
    assert not any("1" in nodes for nodes in replaced)  # node 1 failed first
    assert not any("6" in nodes for nodes in replaced[-10:])  # re-placed after node 6 failed


def test_a_malformed_node_set_is_refused_at_validation(tmp_path: Path) -> None:
    nodes = tmp_path / "nodes.csv"
    nodes.write_text("id,storage_size\n0,10\n")
    with pytest.raises(ValidationError, match=r"missing column.*write_bandwidth"):
        PlacementSimulationConfig(nodes=str(nodes))


@pytest.mark.parametrize("config", [DrexLBConfig(), DrexSCConfig()])
def test_reliability_placers_place_one_chunk_and_refuse_too_few_nodes(config: Any) -> None:
    # A repair asks for one chunk with every other node excluded (down): D-Rex then divided
    # by zero (LB) or reduced an empty array (SC) instead of saying it cannot place.
    placer = config.build()
    mb = 2**20
    nodes = [
        NodeInfo(i, 100 * mb, used, up, 200.0, 200.0, 1.0)
        for i, (used, up) in enumerate([(10 * mb, True), (60 * mb, True), (0, False)])
    ]
    one = placer.place(mb, nodes, n=1, k=1)
    assert one.node_ids == (0,)  # the up node with the most room; the emptier one is down
    only_one_up = [nodes[0], *(replace(n, up=False) for n in nodes[1:])]
    with pytest.raises(CannotPlace, match="needs at least 2"):
        placer.place(mb, only_one_up, n=3, k=2)
    none_up = [replace(n, up=False) for n in nodes]
    with pytest.raises(CannotPlace, match="no up node"):
        placer.place(mb, none_up, n=1, k=1)
