"""``fl=flight``: hierarchical federated learning, sync or async at any depth (Flight's design).

The one option of the ``fl`` group. The tree and the strategy are sub-groups
(``conf/fl/topology``, ``conf/fl/strategy``; their configs live beside what they build, in
``topology.py`` and ``strategies.py``): ``fl/topology=fixed_leaves fl.topology.height=4``,
``fl/strategy=fedprox fl.strategy.mu=0.1``; in a recipe, ``- override /fl/topology:
fixed_leaves``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Self

from pydantic import Field, model_validator

from components.base import LoomModel
from components.fl.protocol import FLConfig
from components.fl.strategies import FedAvgConfig, FedProx, StrategyConfig
from components.fl.topology import TopologyConfig, TwoTier

if TYPE_CHECKING:  # these import torch: not for listing, validating or showing a config
    from components.fl.federation import Plan

# -- data, model, local training -----------------------------------------------------------


class DataConfig(LoomModel):
    """The federation's data and how it is split over the workers."""

    dataset: Literal["digits", "synthetic"] = Field(
        "digits", description="digits (scikit-learn's, real) or synthetic (make_classification)"
    )
    samples: int = Field(20_000, ge=100, le=10_000_000, description="synthetic: samples made")
    samples_alpha: float = Field(10.0, gt=0, le=1e6, description="Dirichlet α of sample counts")
    labels_alpha: float = Field(1.0, gt=0, le=1e6, description="Dirichlet α of label mixes")


class ModelConfig(LoomModel):
    """The model every worker trains."""

    name: Literal["mlp", "cnn"] = Field("mlp", description="mlp (64-hidden-10) or cnn")
    hidden: int = Field(32, ge=1, le=4096, description="hidden units")


class LocalConfig(LoomModel):
    """Each worker's local training per round: minibatch SGD."""

    epochs: int = Field(1, ge=1, le=1000, description="passes over the worker's samples")
    batch_size: int = Field(32, ge=1, le=100_000, description="samples per step")
    lr: float = Field(0.1, gt=0, le=100, description="SGD step size")


class FlightConfig(FLConfig):
    """Hierarchical federated learning, sync or async at any depth (Flight's design)."""

    kind: Literal["flight"] = "flight"
    topology: TopologyConfig = Field(default_factory=TwoTier)
    strategy: StrategyConfig = Field(default_factory=FedAvgConfig)
    mode: Literal["auto", "sync", "async"] = Field(
        "auto", description="sync rounds or async folding; auto: async for fedasync, else sync"
    )
    rounds: int = Field(
        10, ge=1, le=100_000, description="sync: rounds; async: rounds × workers trainings"
    )
    participation: float | list[float] = Field(
        1.0,
        description="share of workers per sync round; or one share per tier (depth 1 … "
        "height): each selected node picks that share of its children",
    )
    selection: Literal["fixed", "probabilistic"] = Field(
        "fixed", description="fixed: that share exactly; probabilistic: each with that chance"
    )
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    local: LocalConfig = Field(default_factory=LocalConfig)
    clients_per_task: int = Field(
        256, ge=1, le=100_000, description="workers trained together in one task (vmapped)"
    )
    slowdown_max: float = Field(
        1.0, ge=1, le=1000, description="the slowest worker takes this many times longer"
    )
    forward_every: int | None = Field(
        None,
        ge=1,
        description="async: an aggregator forwards after this many folds (null: "
        "its number of children)",
    )

    @model_validator(mode="after")
    def _participation_in_range(self) -> Self:
        shares = self.participation
        shares = shares if isinstance(shares, list) else [shares]
        bad = [s for s in shares if not 0 < s <= 1]
        if bad or not shares:
            raise ValueError(f"participation={self.participation!r}: each share must be in (0, 1]")
        if isinstance(self.participation, list):  # one share per tier of this very tree
            height = self.topology.build().height
            if len(shares) != height:
                raise ValueError(
                    f"participation={shares!r}: one share per tier, and this tree "
                    f"has {height} (depth 1 … {height})"
                )
        return self

    @model_validator(mode="after")
    def _async_needs_fedasync(self) -> Self:
        if self.mode == "auto":  # so one sweep over fl/strategy can include fedasync
            self.mode = "async" if self.strategy.kind == "fedasync" else "sync"
        if self.mode == "async" and self.strategy.kind != "fedasync":
            raise ValueError(
                f"mode=async with strategy {self.strategy.kind}: asynchronous "
                "aggregation folds models in as they arrive; use "
                "fl/strategy=fedasync"
            )
        if self.mode == "sync" and self.strategy.kind == "fedasync":
            raise ValueError("strategy fedasync needs mode=async (or mode=auto)")
        return self

    def build(self) -> FlightFL:
        """The federation's settings, with the topology built and validated."""
        return FlightFL(self)


class FlightFL:
    """The ``fl`` component: a federation's settings with its tree built (and so validated)."""

    def __init__(self, config: FlightConfig) -> None:
        self.config = config
        self.topology = config.topology.build()

    @property
    def mode(self) -> Literal["sync", "async"]:
        """Sync rounds or async folding (``auto`` resolved)."""
        return "async" if self.config.mode == "async" else "sync"

    @property
    def strategy(self) -> str:
        """The aggregation strategy's kind."""
        return self.config.strategy.kind

    @property
    def dataset(self) -> Literal["digits", "synthetic"]:
        """The federation's dataset."""
        return self.config.data.dataset

    @property
    def samples(self) -> int:
        """Samples made (synthetic data)."""
        return self.config.data.samples

    def plan(self, seed: int, features: int, classes: int) -> Plan:
        """What one trial runs, for data of ``features`` features and ``classes`` classes."""
        from components.fl import jobs
        from components.fl.federation import Plan
        from components.fl.training import LocalTraining

        cfg = self.config
        strategy = cfg.strategy.build()
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
