"""The ``fl`` group: a federation's topology, strategy, mode, model, data and local training.

``fl=flight`` (Loom's implementation of Flight's design) is the one option. The tree and the
strategy are sub-groups (``conf/fl/topology``, ``conf/fl/strategy``): ``fl/topology=fixed_leaves
fl.topology.height=4``, ``fl/strategy=fedprox fl.strategy.mu=0.1``; in a recipe,
``- override /fl/topology: fixed_leaves``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import Field, model_validator

from components.base import ComponentConfig, LoomModel

# -- topology ---------------------------------------------------------------------------------


class TwoTier(LoomModel):
    """A leader and ``workers`` workers."""

    kind: Literal["two_tier"] = "two_tier"
    workers: int = Field(12, ge=1, le=100_000, description="workers under the leader")

    def build(self) -> Any:
        """The tree."""
        from components.fl.topology import two_tier

        return two_tier(self.workers)


class Balanced(LoomModel):
    """Every inner node has ``branching`` children; workers at depth ``height``."""

    kind: Literal["balanced"] = "balanced"
    branching: int = Field(4, ge=1, le=100_000, description="children per inner node")
    height: int = Field(2, ge=1, le=20, description="depth of the workers")

    def build(self) -> Any:
        """The tree."""
        from components.fl.topology import balanced

        return balanced(self.branching, self.height)


class FixedLeaves(LoomModel):
    """Flight's balanced tree for a leaf count: branching round(leaves^(1/height))."""

    kind: Literal["fixed_leaves"] = "fixed_leaves"
    leaves: int = Field(256, ge=1, le=100_000, description="workers wanted")
    height: int = Field(2, ge=1, le=20, description="depth of the workers")

    def build(self) -> Any:
        """The tree."""
        from components.fl.topology import fixed_leaves

        return fixed_leaves(self.leaves, self.height)


class Hierarchical(LoomModel):
    """Tiers of aggregators of the given sizes, each node under a random one of the tier above."""

    kind: Literal["hierarchical"] = "hierarchical"
    workers: int = Field(16, ge=1, le=100_000, description="workers at the bottom")
    aggr_shape: list[int] = Field(
        default_factory=lambda: [2, 4], description="tier sizes, top first"
    )
    seed: int = Field(0, ge=0, description="seed of the random attachment")

    def build(self) -> Any:
        """The tree."""
        from components.fl.topology import hierarchical

        return hierarchical(self.workers, self.aggr_shape, self.seed)


class TopologyFile(LoomModel):
    """A YAML or JSON file in Flight's node format (id → kind, children, attributes)."""

    kind: Literal["file"] = "file"
    path: str = Field(description="the file (relative to the project, or absolute)")

    @model_validator(mode="after")
    def _exists(self) -> Self:
        if not self.resolved().is_file():
            raise ValueError(f"path={self.path!r}: no such topology file")
        return self

    def resolved(self) -> Path:
        """The file: as given, or relative to the project."""
        path = Path(self.path)
        if not path.is_absolute() and not path.exists():
            path = Path(__file__).resolve().parents[2] / path
        return path

    def build(self) -> Any:
        """The tree."""
        from components.fl.topology import Topology

        return Topology.from_file(self.resolved())


TopologyConfig = Annotated[
    TwoTier | Balanced | FixedLeaves | Hierarchical | TopologyFile, Field(discriminator="kind")
]

# -- strategy ---------------------------------------------------------------------------------


class FedSGDConfig(LoomModel):
    """Unweighted mean of the children's parameters."""

    kind: Literal["fedsgd"] = "fedsgd"


class FedAvgConfig(LoomModel):
    """Mean weighted by samples."""

    kind: Literal["fedavg"] = "fedavg"


class FedProxConfig(LoomModel):
    """FedAvg plus μ/2·‖w − w_global‖² in each worker's objective (in its gradient)."""

    kind: Literal["fedprox"] = "fedprox"
    mu: float = Field(0.3, gt=0, le=1000, description="weight of the proximal term")


class FedAsyncConfig(LoomModel):
    """Fold each model in as it arrives: w ← (1 − α_s)·w + α_s·w_k."""

    kind: Literal["fedasync"] = "fedasync"
    alpha: float = Field(0.5, gt=0, le=1, description="mixing weight of an arriving model")
    staleness: Literal["constant", "polynomial", "hinge"] = Field(
        "constant", description="how α falls with staleness (constant: Flight's)"
    )
    a: float = Field(0.5, gt=0, le=100, description="polynomial exponent / hinge slope")
    b: float = Field(4.0, ge=0, le=10_000, description="hinge: staleness with full weight")


StrategyConfig = Annotated[
    FedSGDConfig | FedAvgConfig | FedProxConfig | FedAsyncConfig, Field(discriminator="kind")
]

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


class FlightConfig(ComponentConfig):
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
                raise ValueError(f"participation={shares!r}: one share per tier, and this tree "
                                 f"has {height} (depth 1 … {height})")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _async_needs_fedasync(self) -> Self:
        if self.mode == "auto":  # so one sweep over fl/strategy can include fedasync
            self.mode = "async" if self.strategy.kind == "fedasync" else "sync"
        if self.mode == "async" and self.strategy.kind != "fedasync":
            raise ValueError(f"mode=async with strategy {self.strategy.kind}: asynchronous "
                             "aggregation folds models in as they arrive; use "
                             "fl/strategy=fedasync")  # fmt: skip
        if self.mode == "sync" and self.strategy.kind == "fedasync":
            raise ValueError("strategy fedasync needs mode=async (or mode=auto)")
        return self

    def build(self) -> Any:
        """The federation's settings, with the topology built and validated."""
        from components.fl.setup import FlightFL

        return FlightFL(self)
