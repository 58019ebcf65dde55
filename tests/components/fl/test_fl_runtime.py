"""Federated learning on the task path: byte accounting, async at depth 3, determinism, engine."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from components.executor.thread import ThreadExecutorConfig
from components.fl.federation import Federation
from components.fl.flight import FlightConfig, FlightFL
from components.fl.strategies import FedAsyncConfig, Update
from components.fl.topology import TwoTier
from components.runtime.taskpath import TaskPath


@pytest.fixture(scope="module")
def pool() -> Iterator[Any]:
    with ThreadExecutorConfig(max_workers=4).build() as executor:
        yield executor


def _federation(config: FlightConfig, pool: Any, path: TaskPath) -> tuple[Federation, Update]:
    from components.fl import jobs
    from components.fl.training import initial_params

    fl = FlightFL(config)
    plan = fl.plan(seed=5, features=64, classes=10)
    start = Update(initial_params(jobs.model_of(plan.model), 5), 0)
    return Federation(plan, path, lambda update: (0.0, 0.0)), start


def _run(config: FlightConfig, pool: Any) -> tuple[Federation, Update, Update, int]:
    with TaskPath(pool) as path:
        federation, start = _federation(config, pool, path)
        size = len(pickle.dumps(start, protocol=5))
        run = federation.run_sync if config.mode == "sync" else federation.run_async
        final = run(start, size)
    return federation, start, final, size


def test_bytes_per_edge_are_the_serialized_models_sent(pool: Any) -> None:
    config = FlightConfig(
        topology={"kind": "balanced", "branching": 2, "height": 2}, rounds=2, clients_per_task=1
    )
    federation, _, final, size = _run(config, pool)
    # Every model has the same tensors; pickle's header differs by a few bytes (sample count).
    assert abs(size - len(pickle.dumps(final, protocol=5))) < 32
    assert federation.edges is not None
    totals = federation.edges.totals(FlightFL(config).topology)
    # 6 edges, each one model down and one up per round, 2 rounds.
    assert totals["bytes_down"] == totals["bytes_up"] == 6 * 2 * size
    assert totals["root_messages_in"] == 2 * 2 and totals["root_bytes_in"] == 4 * size
    assert totals["bytes_tier_1"] == 2 * 2 * 2 * size and totals["bytes_tier_2"] == 4 * 2 * 2 * size
    trains = [t for t in federation.path.tasks if t.name == "train"]
    assert len(trains) == 4 * 2  # one task per worker per round (clients_per_task=1)


def test_partial_participation_counts_only_the_edges_used(pool: Any) -> None:
    config = FlightConfig(
        topology={"kind": "balanced", "branching": 2, "height": 2}, rounds=1, participation=0.25
    )
    federation, _, _, _ = _run(config, pool)
    assert federation.edges is not None
    # One worker of four: its edge and its aggregator's edge, once each way.
    assert federation.history[0]["participants"] == 1
    assert sum(federation.edges.down.values()) == 2 and sum(federation.edges.up.values()) == 2


def test_fedavg_over_a_tree_trains_the_same_model_as_over_a_star(pool: Any) -> None:
    tree = FlightConfig(topology={"kind": "balanced", "branching": 2, "height": 2}, rounds=2)
    star = FlightConfig(topology=TwoTier(workers=4), rounds=2)
    _, _, from_tree, _ = _run(tree, pool)
    _, _, from_star, _ = _run(star, pool)
    for name in from_star.state:
        assert torch.allclose(from_tree.state[name], from_star.state[name], atol=1e-6)


def test_participation_per_tier_picks_under_the_selected_aggregators(pool: Any) -> None:
    config = FlightConfig(
        topology={"kind": "balanced", "branching": 4, "height": 2},
        rounds=3,
        participation=[0.5, 0.25],
    )
    federation, _, _, _ = _run(config, pool)
    topo = FlightFL(config).topology
    for round_ in range(3):
        chosen = federation.select(round_)
        parents = {topo.parent[w] for w in chosen}
        # Two of four aggregators, one of four workers under each.
        assert len(parents) == 2 and len(chosen) == 2
    assert [h["participants"] for h in federation.history] == [2, 2, 2]
    assert federation.edges is not None
    assert sum(federation.edges.up.values()) == 3 * 4  # per round: 2 worker and 2 aggregator edges


def test_participation_per_tier_must_match_the_tree() -> None:
    with pytest.raises(ValueError, match=r"one share per tier, and this tree has 2"):
        FlightFL(
            FlightConfig(
                topology={"kind": "balanced", "branching": 2, "height": 2}, participation=[0.5]
            )
        )
    with pytest.raises(ValueError, match=r"participation=\[0.5, 1.5\]: each share must be in"):
        FlightConfig(participation=[0.5, 1.5])


def test_a_seeded_run_repeats_exactly(pool: Any) -> None:
    config = FlightConfig(
        topology=TwoTier(workers=6), rounds=2, participation=0.5, selection="probabilistic"
    )
    first, second = _run(config, pool), _run(config, pool)
    assert [h["participants"] for h in first[0].history] == [
        h["participants"] for h in second[0].history
    ]
    for name in first[2].state:
        assert torch.equal(first[2].state[name], second[2].state[name])
    assert not torch.equal(first[2].state[name], first[1].state[name])  # it trained


def test_async_runs_at_depth_three(pool: Any) -> None:
    config = FlightConfig(
        topology={"kind": "balanced", "branching": 2, "height": 3},
        strategy=FedAsyncConfig(alpha=0.5, staleness="polynomial"),
        mode="async",
        rounds=3,
    )
    federation, start, final, _ = _run(config, pool)
    tasks = federation.path.tasks
    trains = [t for t in tasks if t.name == "train"]
    assert len(trains) == 8 * 3 and all(t.success for t in tasks)  # 8 workers, 3 each
    assert federation.edges is not None
    # Aggregators forward every 2 folds; the leader hears only from its 2 children.
    assert set(p for p, _ in federation.edges.up) == {
        "leader",
        "a1.0",
        "a1.1",
        "a2.0",
        "a2.1",
        "a2.2",
        "a2.3",
    }
    assert federation.edges.totals(FlightFL(config).topology)["root_messages_in"] >= 2
    assert federation.history  # the leader's model evaluated as it moved
    assert any(not torch.equal(final.state[k], start.state[k]) for k in final.state)
    assert 0 <= federation.idle_fraction() < 1


def test_bad_fl_settings_are_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="mode=async with strategy fedavg"):
        FlightConfig(mode="async")
    with pytest.raises(ValidationError, match="strategy fedasync needs mode=async"):
        FlightConfig(strategy=FedAsyncConfig(), mode="sync")
    # mode=auto (the default) runs fedasync asynchronously and the rest in rounds.
    assert FlightConfig(strategy=FedAsyncConfig()).mode == "async" and FlightConfig().mode == "sync"
    with pytest.raises(ValidationError, match="alpha"):
        FedAsyncConfig(alpha=0)
    with pytest.raises(ValidationError, match=r"path='/nope\.yaml': no such topology file"):
        FlightConfig(topology={"kind": "file", "path": "/nope.yaml"})
    from components.fl.topology import TopologyError

    with pytest.raises(TopologyError, match="each tier needs at least as many"):
        FlightFL(FlightConfig(topology={"kind": "hierarchical", "workers": 2, "aggr_shape": [3]}))


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_a_small_federation_through_the_engine(workdir: Path) -> None:
    import mlflow

    from framework.cli import main

    status = main(
        [
            "run",
            "recipe=flight/hierarchy",
            "fl.topology.leaves=16",
            "fl.topology.height=2",
            "fl.rounds=3",
            "fl.data.dataset=digits",
            "executor=thread",
        ]
    )
    assert status == 0
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'results' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["flight/hierarchy"])
    job = runs[runs["tags.loom.run_type"] == "job"].iloc[0]
    assert job["params.fl.topology.kind"] == "fixed_leaves" and job["params.fl.rounds"] == "3"
    assert job["metrics.workers"] == 16 and job["metrics.height"] == 2
    # 16 leaves under 4 aggregators: 20 edges, a model each way per round.
    assert job["metrics.models_per_round"] == 40
    assert job["metrics.root_messages_in"] == 4 * 3
    assert job["metrics.analytic_reduction_percent"] == pytest.approx(100 * (1 - 40 / 52))
    assert 0.1 < job["metrics.final_accuracy"] <= 1
    trial_dir = Path(job["tags.loom.run_dir"]) / "trial-000"
    assert len((trial_dir / "rounds.jsonl").read_text().splitlines()) == 3
    assert (trial_dir / "federated-trial-000.png").exists()
    assert (trial_dir / "fl-nodes-trial-000.png").stat().st_size > 10_000


def test_models_cross_the_process_executor_only_as_references() -> None:
    from components.dataflow.proxystore_flow import ProxyStoreConfig, ProxyStoreFlow
    from components.executor.process import ProcessExecutorConfig

    config = FlightConfig(
        topology={"kind": "balanced", "branching": 2, "height": 2}, rounds=2, clients_per_task=1
    )
    flow_config = ProxyStoreConfig(connector="file", threshold_bytes=1000)
    with flow_config.build() as flow, ProcessExecutorConfig(max_workers=2).build() as pool:
        assert isinstance(flow, ProxyStoreFlow)
        with TaskPath(pool, mover=flow.mover()) as path:
            federation, start = _federation(config, pool, path)
            final = federation.run_sync(start, len(pickle.dumps(start, protocol=5)))
            tasks = path.tasks
            assert all(t.success for t in tasks), [t.error for t in tasks]
            # Every model a task produced went back as a proxy (4 trainings, 2 aggregators
            # and the leader per round); each aggregation read its children's by reference.
            assert all(t.moved is not None and t.moved["proxied_out"] == 1 for t in tasks)
            aggregations = [t for t in tasks if t.name == "aggregate"]
            assert sorted(t.moved["proxied_in"] for t in aggregations) == [2] * 6
            # The leader resolved the leader's aggregate once per round, nothing else.
            assert flow.client_gets() == 2
            assert not torch.equal(final.state["0.weight"], start.state["0.weight"])
        assert flow.stored() == (0, 0)  # nothing leaked
