"""``fl=flight`` built: the validated topology and what a run plans from the config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from components.fl import jobs
from components.fl.federation import Plan
from components.fl.strategies import FedAsync, FedAvg, FedProx, FedSGD, Strategy
from components.fl.training import LocalTraining

if TYPE_CHECKING:
    from components.fl.config import FlightConfig, StrategyConfig


def runtime_strategy(config: StrategyConfig) -> Strategy:
    """The strategy object of a strategy config."""
    if config.kind == "fedsgd":
        return FedSGD()
    if config.kind == "fedavg":
        return FedAvg()
    if config.kind == "fedprox":
        return FedProx(mu=config.mu)
    return FedAsync(alpha=config.alpha, staleness=config.staleness, a=config.a, b=config.b)


class FlightFL:
    """The ``fl`` component: a federation's settings with its tree built (and so validated)."""

    def __init__(self, config: FlightConfig) -> None:
        self.config = config
        self.topology = config.topology.build()

    def plan(self, seed: int, features: int, classes: int) -> Plan:
        """What one trial runs, for data of ``features`` features and ``classes`` classes."""
        cfg = self.config
        strategy = runtime_strategy(cfg.strategy)
        mu = strategy.mu if isinstance(strategy, FedProx) else 0.0
        workers = self.topology.workers
        spread = cfg.slowdown_max - 1
        slowdowns = {w: 1 + spread * i / max(1, len(workers) - 1) for i, w in enumerate(workers)}
        for w in workers:  # a topology file may give a worker its own slowdown
            given = self.topology.nodes[w].attrs.get("slowdown")
            if given is not None:
                slowdowns[w] = float(given)
        return Plan(
            topology=self.topology,
            strategy=strategy,
            rounds=cfg.rounds,
            participation=tuple(cfg.participation)
            if isinstance(cfg.participation, list)
            else cfg.participation,
            selection=cfg.selection,
            local=LocalTraining(cfg.local.epochs, cfg.local.batch_size, cfg.local.lr, mu),
            data=jobs.DataSpec(
                cfg.data.dataset,
                cfg.data.samples,
                seed,
                len(workers),
                cfg.data.samples_alpha,
                cfg.data.labels_alpha,
            ),
            model=jobs.ModelSpec(cfg.model.name, features, classes, cfg.model.hidden),
            clients_per_task=1 if cfg.mode == "async" else cfg.clients_per_task,
            slowdowns=slowdowns,
            seed=seed,
            forward_every=cfg.forward_every,
        )
