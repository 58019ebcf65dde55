"""Aggregation strategies: FedSGD, FedAvg, FedProx and FedAsync over torch state dicts.

A model travels as an :class:`Update`: its parameters and the number of samples behind them.
An aggregator combines its children's updates into one and sends that up, so a tree of
FedAvg aggregators gives exactly the flat sample-weighted mean at the root.

- **FedSGD** (Flight's name): the unweighted mean of the children's parameters.
- **FedAvg**: the mean weighted by samples.
- **FedProx(μ)**: FedAvg's aggregation; its local objective adds μ/2·‖w − w_global‖², built
  from the live parameters (:func:`proximal_term`) so that it reaches the gradient. Flight
  builds it from detached tensors: it changes the loss value and adds no gradient.
- **FedAsync(α, staleness)**: each arriving model is folded in as it comes,
  w ← (1 − α_s)·w + α_s·w_k, with α_s = α·s(τ) for a model trained on a global model τ
  versions old: s = 1 (``constant``), (1 + τ)^(−a) (``polynomial``) or 1 for τ ≤ b and
  1/(a(τ − b) + 1) after (``hinge``), as in Xie et al.'s FedAsync. Flight has no staleness term.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from components.base import LoomModel

if TYPE_CHECKING:
    import torch

State = dict[str, "torch.Tensor"]


@dataclass(frozen=True)
class Update:
    """Parameters and the samples they were trained on (summed up the tree)."""

    state: Mapping[str, torch.Tensor]
    samples: int

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Tensors pickle as numpy arrays: torch's own reduction for process queues shares each
        # tensor through a file descriptor, and thousands in flight exhaust the process's
        # descriptors (measured: "Too many open files" at 383 tasks a round).
        arrays = {k: v.detach().cpu().numpy() for k, v in self.state.items()}
        return _rebuild_update, (arrays, self.samples)


def _rebuild_update(arrays: Mapping[str, Any], samples: int) -> Update:
    import torch

    return Update({k: torch.from_numpy(v) for k, v in arrays.items()}, samples)


_BLOCK = 256  # updates per product in weighted_mean


def weighted_mean(updates: Sequence[Update], weights: Sequence[float]) -> State:
    """Σ wᵢ·stateᵢ / Σ wᵢ, per tensor, in float64 then cast back (order-independent enough)."""
    import torch

    if not updates:
        raise ValueError("nothing to aggregate: no updates")
    total = float(sum(weights))
    if total <= 0:
        raise ValueError(f"weights {list(weights)} sum to {total}; they must sum to more than 0")
    if len(weights) != len(updates):
        raise ValueError(f"{len(updates)} updates but {len(weights)} weights")
    shares = torch.tensor([w / total for w in weights], dtype=torch.float64)
    out: State = {}
    for name, first in updates[0].state.items():
        acc = torch.zeros_like(first, dtype=torch.float64)
        # A block of updates at a time in one product: per update and tensor, the Python
        # loop cost a tenth of a round at 2,048 devices; blocks bound the float64 copy.
        for begin in range(0, len(updates), _BLOCK):
            block = updates[begin : begin + _BLOCK]
            stacked = torch.stack([u.state[name] for u in block]).to(torch.float64)
            acc += torch.tensordot(shares[begin : begin + len(block)], stacked, dims=1)
        out[name] = acc.to(first.dtype)
    return out


@dataclass(frozen=True)
class FedSGD:
    """Unweighted mean of the children's parameters."""

    kind: Literal["fedsgd"] = "fedsgd"

    def aggregate(self, updates: Sequence[Update]) -> Update:
        """One update for the parent: the plain mean, carrying the children's sample total."""
        return Update(weighted_mean(updates, [1.0] * len(updates)), sum(u.samples for u in updates))


@dataclass(frozen=True)
class FedAvg:
    """Mean weighted by the samples behind each child's model."""

    kind: Literal["fedavg"] = "fedavg"

    def aggregate(self, updates: Sequence[Update]) -> Update:
        """The sample-weighted mean and the sample total."""
        return Update(
            weighted_mean(updates, [float(u.samples) for u in updates]),
            sum(u.samples for u in updates),
        )


@dataclass(frozen=True)
class FedProx(FedAvg):
    """FedAvg with the proximal term μ/2·‖w − w_global‖² in each worker's objective."""

    kind: Literal["fedprox"] = "fedprox"  # type: ignore[assignment]
    mu: float = 0.3


def proximal_term(
    params: Mapping[str, torch.Tensor], anchor: Mapping[str, torch.Tensor], mu: float
) -> torch.Tensor:
    """μ/2·Σ‖w − w_global‖², differentiable in ``params`` (``anchor`` is treated as constant)."""
    import torch

    terms = [((params[name] - anchor[name].detach()) ** 2).sum() for name in params]
    return 0.5 * mu * torch.stack(terms).sum()


Staleness = Literal["constant", "polynomial", "hinge"]


@dataclass(frozen=True)
class FedAsync:
    """Fold each model in as it arrives, down-weighted by how stale it is."""

    alpha: float = 0.5
    staleness: Staleness = "constant"
    a: float = 0.5
    b: float = 4.0
    kind: Literal["fedasync"] = "fedasync"

    def __post_init__(self) -> None:
        if not 0 < self.alpha <= 1:
            raise ValueError(f"alpha={self.alpha}: must be in (0, 1]")

    def mixing(self, staleness: int) -> float:
        """α_s for a model trained ``staleness`` versions ago."""
        if staleness < 0:
            raise ValueError(f"staleness={staleness} is negative")
        if self.staleness == "polynomial":
            return float(self.alpha * (1 + staleness) ** (-self.a))
        if self.staleness == "hinge" and staleness > self.b:
            return self.alpha / (self.a * (staleness - self.b) + 1)
        return self.alpha

    def fold(self, current: Update, arrived: Update, staleness: int) -> Update:
        """(1 − α_s)·current + α_s·arrived; the sample count is the larger of the two."""
        alpha = self.mixing(staleness)
        state = (
            weighted_mean([current, arrived], [1 - alpha, alpha])
            if alpha < 1
            else dict(arrived.state)
        )
        return Update(state, max(current.samples, arrived.samples))

    def aggregate(self, updates: Sequence[Update]) -> Update:
        """Used where a synchronous step meets this strategy: FedAvg of the children."""
        return FedAvg().aggregate(updates)


Strategy = FedSGD | FedAvg | FedProx | FedAsync


# -- the configs of conf/fl/strategy -----------------------------------------------------------


class FedSGDConfig(LoomModel):
    """Unweighted mean of the children's parameters."""

    kind: Literal["fedsgd"] = "fedsgd"

    def build(self) -> FedSGD:
        """The strategy."""
        return FedSGD()


class FedAvgConfig(LoomModel):
    """Mean weighted by samples."""

    kind: Literal["fedavg"] = "fedavg"

    def build(self) -> FedAvg:
        """The strategy."""
        return FedAvg()


class FedProxConfig(LoomModel):
    """FedAvg plus μ/2·‖w − w_global‖² in each worker's objective (in its gradient)."""

    kind: Literal["fedprox"] = "fedprox"
    mu: float = Field(0.3, gt=0, le=1000, description="weight of the proximal term")

    def build(self) -> FedProx:
        """The strategy."""
        return FedProx(mu=self.mu)


class FedAsyncConfig(LoomModel):
    """Fold each model in as it arrives: w ← (1 − α_s)·w + α_s·w_k."""

    kind: Literal["fedasync"] = "fedasync"
    alpha: float = Field(0.5, gt=0, le=1, description="mixing weight of an arriving model")
    staleness: Literal["constant", "polynomial", "hinge"] = Field(
        "constant", description="how α falls with staleness (constant: Flight's)"
    )
    a: float = Field(0.5, gt=0, le=100, description="polynomial exponent / hinge slope")
    b: float = Field(4.0, ge=0, le=10_000, description="hinge: staleness with full weight")

    def build(self) -> FedAsync:
        """The strategy."""
        return FedAsync(alpha=self.alpha, staleness=self.staleness, a=self.a, b=self.b)


StrategyConfig = Annotated[
    FedSGDConfig | FedAvgConfig | FedProxConfig | FedAsyncConfig, Field(discriminator="kind")
]
