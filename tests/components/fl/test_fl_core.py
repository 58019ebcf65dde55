"""Federated learning, first part: topologies and their validation, aggregation strategies."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from components.fl.strategies import FedAsync, FedAvg, FedProx, FedSGD, Update, proximal_term
from components.fl.topology import (
    NodeKind,
    Topology,
    TopologyError,
    balanced,
    fixed_leaves,
    hierarchical,
    reduction_percent,
    two_tier,
)


def test_factories_build_the_trees_flight_describes() -> None:
    star = two_tier(5)
    assert star.height == 1 and len(star.workers) == 5 and star.aggregators == []
    tree = balanced(3, 2)
    assert len(tree.workers) == 9 and len(tree.aggregators) == 3 and tree.height == 2
    assert tree.ancestors(tree.workers[0]) == ["a1.0", "leader"]
    for height, branching in ((1, 256), (2, 16), (4, 4), (8, 2)):
        t = fixed_leaves(256, height)
        assert len(t.workers) == 256 and t.height == height
        assert len(t.nodes[t.root].children) == branching
    assert len(fixed_leaves(100, 3).workers) == 125  # r = round(100^(1/3)) = 5, as in Flight
    h = hierarchical(20, [2, 5], seed=1)
    assert len(h.workers) == 20 and len(h.aggregators) == 7 and h.height == 3
    assert all(h.nodes[a].children for a in h.aggregators)  # none left childless
    assert h.to_dict() == hierarchical(20, [2, 5], seed=1).to_dict()  # seeded


def test_the_analytic_reduction_is_flights() -> None:
    # Flight's notebook: 0 / 30.61 / 50.15 / 60.13 % for 256 leaves at heights 1, 2, 4, 8.
    got = [round(reduction_percent(fixed_leaves(256, h)), 2) for h in (1, 2, 4, 8)]
    assert got == [0.0, 30.61, 50.15, 60.13]


def test_a_file_in_flights_format_round_trips(tmp_path: Path) -> None:
    spec = {
        "0": {"kind": "leader", "children": [1, 2]},
        "1": {"kind": "aggregator", "children": [3, 4], "resources": {"num_cpus": 2}},
        "2": {"kind": "worker", "speed": 0.5},
        "3": {"kind": "worker"},
        "4": {"kind": "worker"},
    }
    (tmp_path / "t.json").write_text(json.dumps(spec))
    (tmp_path / "t.yaml").write_text(
        "0: {kind: leader, children: [1, 2]}\n"
        "1: {kind: aggregator, children: [3, 4]}\n"
        "2: {kind: worker}\n3: {kind: worker}\n4: {kind: worker}\n"
    )
    for name in ("t.json", "t.yaml"):
        topo = Topology.from_file(tmp_path / name)
        assert topo.root == "0" and topo.workers == ["3", "4", "2"] and topo.height == 2
    topo = Topology.from_file(tmp_path / "t.json")
    assert topo.nodes["1"].attrs == {"resources": {"num_cpus": 2}}
    assert topo.nodes["2"].kind is NodeKind.WORKER and topo.nodes["2"].attrs["speed"] == 0.5
    assert Topology.from_dict(topo.to_dict()).to_dict() == topo.to_dict()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {
                "a": {"kind": "leader", "children": ["b"]},
                "b": {"kind": "worker", "children": ["a"]},
            },
            "the leader 'a' has a parent",
        ),
        (
            {
                "a": {"kind": "leader", "children": ["b"]},
                "b": {"kind": "worker"},
                "c": {"kind": "leader", "children": ["d"]},
                "d": {"kind": "worker"},
            },
            "exactly one leader; found 2",
        ),
        (
            {
                "a": {"kind": "leader", "children": ["b"]},
                "b": {"kind": "worker", "children": ["c"]},
                "c": {"kind": "worker"},
            },
            "worker 'b' has children",
        ),
        (
            {"a": {"kind": "leader", "children": ["b"]}, "b": {"kind": "aggregator"}},
            "aggregator 'b' has no children",
        ),
        (
            {
                "a": {"kind": "leader", "children": ["b", "c"]},
                "b": {"kind": "worker"},
                "c": {"kind": "aggregator", "children": ["b"]},
            },
            "node 'b' has two parents",
        ),
        (
            {
                "a": {"kind": "leader", "children": ["b"]},
                "b": {"kind": "worker"},
                "x": {"kind": "aggregator", "children": ["y"]},
                "y": {"kind": "aggregator", "children": ["x"]},
            },
            "two parents|no parent|cycle|not reachable",
        ),
        ({"a": {"kind": "leader", "children": ["zz"]}}, "lists child 'zz', not a node"),
        (
            {"a": {"kind": "boss", "children": []}},
            "kind='boss'; allowed: leader, aggregator, worker",
        ),
    ],
)
def test_invalid_trees_are_refused_naming_the_node(spec: dict, message: str) -> None:
    with pytest.raises(TopologyError, match=message):
        Topology.from_dict(spec)


def test_bad_factory_arguments_are_refused() -> None:
    with pytest.raises(TopologyError, match="each tier needs at least as many nodes"):
        hierarchical(4, [5])
    with pytest.raises(TopologyError, match="n must be at least 1"):
        two_tier(0)
    with pytest.raises(TopologyError, match="does not exist"):
        Topology.from_file("/nonexistent/topo.yaml")


def _update(values: list[float], samples: int) -> Update:
    return Update({"w": torch.tensor(values), "b": torch.tensor([sum(values)])}, samples)


def test_each_strategy_aggregates_as_computed_by_hand() -> None:
    a, b = _update([1.0, 2.0], 1), _update([3.0, 6.0], 3)
    sgd = FedSGD().aggregate([a, b])
    assert torch.allclose(sgd.state["w"], torch.tensor([2.0, 4.0])) and sgd.samples == 4
    avg = FedAvg().aggregate([a, b])  # (1·[1,2] + 3·[3,6]) / 4
    assert torch.allclose(avg.state["w"], torch.tensor([2.5, 5.0]))
    assert torch.allclose(avg.state["b"], torch.tensor([7.5]))
    assert torch.allclose(FedProx(mu=0.1).aggregate([a, b]).state["w"], avg.state["w"])
    fold = FedAsync(alpha=0.25).fold(a, b, staleness=0)  # 0.75·a + 0.25·b
    assert torch.allclose(fold.state["w"], torch.tensor([1.5, 3.0]))
    poly = FedAsync(alpha=0.5, staleness="polynomial", a=1.0)
    assert poly.mixing(0) == 0.5 and poly.mixing(3) == 0.125
    hinge = FedAsync(alpha=0.5, staleness="hinge", a=1.0, b=2)
    assert hinge.mixing(2) == 0.5 and hinge.mixing(4) == pytest.approx(0.5 / 3)
    with pytest.raises(ValueError, match=r"alpha=0: must be in \(0, 1\]"):
        FedAsync(alpha=0)


def test_fedavg_over_a_tree_equals_flat_fedavg() -> None:
    gen = torch.Generator().manual_seed(0)
    updates = [Update({"w": torch.randn(4, generator=gen)}, s) for s in (5, 1, 7, 2, 9)]
    flat = FedAvg().aggregate(updates)
    left, right = FedAvg().aggregate(updates[:2]), FedAvg().aggregate(updates[2:])
    tree = FedAvg().aggregate([left, right])
    assert tree.samples == flat.samples == 24
    assert torch.allclose(tree.state["w"], flat.state["w"], atol=1e-6)


def test_our_proximal_term_reaches_the_gradient_and_flights_does_not() -> None:
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    anchor = {"w": torch.tensor([0.0, 0.0])}
    proximal_term({"w": w}, anchor, mu=0.5).backward()
    assert torch.allclose(w.grad, 0.5 * (w.detach() - anchor["w"]))  # mu * (w - w_global)
    # Flight: torch.tensor([...]) of the parameters' values, detached from the graph.
    w.grad = None
    flight_term = 0.5 * 0.5 * torch.tensor([((w.detach() - anchor["w"]) ** 2).sum()]).sum()
    loss = (w * 0).sum() + flight_term
    loss.backward()
    assert torch.count_nonzero(w.grad) == 0  # it changes the loss and adds no gradient


def _digits_clients(
    workers: int, seed: int = 0
) -> tuple[Any, list[tuple[torch.Tensor, torch.Tensor]]]:
    from components.fl.data import federated_split, load

    data = load("digits", seed)
    parts = federated_split(data.y_train, workers, samples_alpha=2.0, labels_alpha=1.0, seed=seed)
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    return data, [(x[p], y[p]) for p in parts]


def test_the_split_is_disjoint_seeded_and_alpha_controls_the_label_mix() -> None:
    from components.fl.data import federated_split, load

    labels = load("digits", 0).y_train
    parts = federated_split(labels, 50, samples_alpha=1.0, labels_alpha=0.1, seed=4)
    joined = np.concatenate(parts)
    assert len(joined) == len(set(joined.tolist())) <= len(labels)  # no sample twice
    assert min(len(p) for p in parts) >= 1
    again = federated_split(labels, 50, samples_alpha=1.0, labels_alpha=0.1, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))

    def classes_per_worker(alpha: float) -> float:
        split = federated_split(labels, 20, samples_alpha=100.0, labels_alpha=alpha, seed=1)
        return float(np.mean([len(np.unique(labels[p])) for p in split]))

    assert classes_per_worker(0.05) < classes_per_worker(100.0)  # larger alpha: more even
    with pytest.raises(ValueError, match="4000 workers but only 1437 training samples"):
        federated_split(labels, 4000, samples_alpha=1.0, labels_alpha=1.0, seed=0)


@pytest.mark.parametrize(("model", "mu"), [("mlp", 0.0), ("cnn", 0.5)])
def test_batched_training_matches_one_client_at_a_time(model: str, mu: float) -> None:
    from components.fl.training import (
        LocalTraining,
        build_model,
        initial_params,
        train_many,
        train_one,
    )

    data, clients = _digits_clients(9)
    net = build_model(model, data.features, data.classes)  # type: ignore[arg-type]
    start = initial_params(net, 7)
    cfg = LocalTraining(epochs=2, batch_size=16, lr=0.1, mu=mu)
    seeds = [100 + i for i in range(len(clients))]
    one = [train_one(net, start, x, y, cfg, s) for (x, y), s in zip(clients, seeds, strict=True)]
    many = train_many(net, start, clients, cfg, seeds)
    for a, b in zip(one, many, strict=True):
        for name in a:
            assert torch.allclose(a[name], b[name], atol=1e-6), name  # rounding, not drift
    moved = [
        float(
            (
                m["0.weight" if model == "mlp" else "1.weight"]
                - start["0.weight" if model == "mlp" else "1.weight"]
            )
            .abs()
            .max()
        )
        for m in many
    ]
    assert min(moved) > 0  # every client trained (clients differ in size and data)
    assert not torch.allclose(many[0][next(iter(start))], many[1][next(iter(start))])


def test_fedprox_pulls_local_training_toward_the_global_model() -> None:
    from components.fl.training import LocalTraining, build_model, initial_params, train_one

    data, clients = _digits_clients(4)
    net = build_model("mlp", data.features, data.classes)
    start = initial_params(net, 1)
    x, y = clients[0]

    def drift(mu: float) -> float:
        out = train_one(net, start, x, y, LocalTraining(epochs=5, lr=0.1, mu=mu), seed=3)
        return sum(float(((out[k] - start[k]) ** 2).sum()) for k in out) ** 0.5

    assert drift(5.0) < 0.8 * drift(0.0)  # the term reaches the update: less drift


def test_an_update_pickles_its_tensors_as_arrays() -> None:
    import pickle
    from multiprocessing.reduction import ForkingPickler

    update = _update([1.0, 2.0], 3)
    # Through the process pool's pickler too: no torch storage shared by file descriptor.
    data = bytes(ForkingPickler.dumps(update))
    assert b"torch.multiprocessing" not in data and b"rebuild_storage_fd" not in data
    back = pickle.loads(data)
    assert back.samples == 3 and torch.equal(back.state["w"], update.state["w"])


def test_loaded_data_is_what_scikit_learn_makes_and_leaves_it_unimported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    from components.fl.data import load, make

    monkeypatch.setenv("LOOM_CACHE", str(tmp_path))
    loaded = load("synthetic", 3, 500)
    made = make("synthetic", 3, 500, 0.2)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(getattr(loaded, name), getattr(made, name))
    assert len(list(tmp_path.glob("fl-synthetic-3-500-*.npz"))) == 1
    # A fresh process reading the cache never imports scikit-learn (146 MB).
    probe = (
        "import sys; from components.fl.data import load; load('synthetic', 3, 500); "
        "print('sklearn' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={**os.environ, "LOOM_CACHE": str(tmp_path)},
        check=True,
    )
    assert out.stdout.strip() == "False"
