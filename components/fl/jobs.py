"""What runs on the executor: local training of a group of clients, aggregation, folding.

These are plain functions of picklable arguments (Flight's "pure" jobs): a worker process
rebuilds the federation's data and the model from their specs once and keeps them (so each
client's samples stay where they were made), and model states travel as arguments and results,
by value or as proxies, whichever the ``dataflow`` group decides.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

from components.fl.data import DatasetName, federated_split, load
from components.fl.strategies import FedAsync, Strategy, Update
from components.fl.training import LocalTraining, ModelName, build_model, train_many, train_one
from components.runtime.memory import release_freed_memory


@dataclass(frozen=True)
class DataSpec:
    """How to rebuild the federation's data anywhere (deterministic from these fields)."""

    dataset: DatasetName
    samples: int
    seed: int
    workers: int
    samples_alpha: float
    labels_alpha: float


@dataclass(frozen=True)
class ModelSpec:
    """Which model, for which data shape."""

    name: ModelName
    features: int
    classes: int
    hidden: int


@lru_cache(maxsize=4)
def federation_data(spec: DataSpec) -> tuple[torch.Tensor, torch.Tensor, list[Any]]:
    """Train features, labels and each worker's sample indices (built once per process)."""
    data = load(spec.dataset, spec.seed, spec.samples)
    parts = federated_split(
        data.y_train,
        spec.workers,
        samples_alpha=spec.samples_alpha,
        labels_alpha=spec.labels_alpha,
        seed=spec.seed,
    )
    return torch.as_tensor(data.x_train), torch.as_tensor(data.y_train), parts


@lru_cache(maxsize=64)
def clients_data(
    spec: DataSpec, clients: tuple[int, ...]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each client's own features and labels, gathered once per process.

    A task trains the same clients every round; gathering them anew was a tenth of a round
    at 2,048 devices.
    """
    x, y, parts = federation_data(spec)
    return [(x[torch.as_tensor(parts[c])], y[torch.as_tensor(parts[c])]) for c in clients]


_per_thread = threading.local()


def model_of(spec: ModelSpec) -> torch.nn.Module:
    """The calling thread's module of the model (its parameters come with each call).

    One per thread: ``functional_call`` swaps the module's parameters while it runs, so two
    threads sharing a module would train each other's parameters.
    """
    cache: dict[ModelSpec, torch.nn.Module] = _per_thread.__dict__.setdefault("models", {})
    if spec not in cache:
        cache[spec] = build_model(spec.name, spec.features, spec.classes, spec.hidden)
    return cache[spec]


def train_clients(
    data: DataSpec,
    model: ModelSpec,
    start: Update,
    clients: tuple[int, ...],
    local: LocalTraining,
    seeds: tuple[int, ...],
    slowdown: float = 1.0,
) -> list[Update]:
    """Train ``clients`` (worker indices) from ``start``; one update per client.

    Many clients go through :func:`train_many` in one vectorised pass; ``slowdown`` > 1 makes
    a slow device (it sleeps ``(slowdown − 1)`` × its training time).
    """
    torch.set_num_threads(1)  # one core per task: the executor runs the others
    began = time.perf_counter()
    net = model_of(model)
    own = clients_data(data, clients)
    if len(clients) == 1:
        states = [train_one(net, start.state, *own[0], local, seeds[0])]
    else:
        states = train_many(net, start.state, own, local, list(seeds))
        # Its batches, activations and gradients are freed now: give them back, or every
        # pool thread's heap keeps its largest task's (a tenth of Loom's memory in
        # benchmarks/fl.py at 2,048 devices, for a fifth of a round's time).
        release_freed_memory()
    if slowdown > 1:
        time.sleep((slowdown - 1) * (time.perf_counter() - began))
    return [Update(s, len(o[1])) for s, o in zip(states, own, strict=True)]


def _flatten(parts: tuple[Update | list[Update], ...]) -> list[Update]:
    out: list[Update] = []
    for part in parts:
        out += part if isinstance(part, list) else [part]
    return out


def aggregate(strategy: Strategy, *parts: Update | list[Update]) -> Update:
    """An aggregator's job: its children's updates (single or grouped) combined into one."""
    return strategy.aggregate(_flatten(parts))


def fold(
    strategy: FedAsync, current: Update, arrived: Update | list[Update], staleness: int
) -> Update:
    """An asynchronous aggregator's job: fold one child's model into its own."""
    (child,) = _flatten((arrived,))
    return strategy.fold(current, child, staleness)


def prime(data: DataSpec, model: ModelSpec) -> int:
    """Warm a worker: import torch, build the data and the model (start-up, timed apart)."""
    x, _, _ = federation_data(data)
    model_of(model)
    return int(x.shape[0])
