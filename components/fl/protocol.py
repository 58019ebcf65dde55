"""The ``fl`` area's contracts: a federation as its scenario runs it, and the config base."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from components.base import ComponentConfig
from components.fl.topology import Topology

if TYPE_CHECKING:  # the federation imports torch: not for listing or validating configs
    from components.fl.federation import Plan


@runtime_checkable
class FederatedLearning(Protocol):
    """What the ``fl`` group gives a scenario: the tree, and what each trial runs."""

    topology: Topology

    @property
    def mode(self) -> Literal["sync", "async"]:
        """Sync rounds or async folding."""

    @property
    def strategy(self) -> str:
        """The aggregation strategy's kind (``fedavg``, ``fedasync``, ...)."""

    @property
    def dataset(self) -> Literal["digits", "synthetic"]:
        """The federation's dataset (``digits``, ``synthetic``)."""

    @property
    def samples(self) -> int:
        """Samples made (synthetic data)."""

    def plan(self, seed: int, features: int, classes: int) -> Plan:
        """What one trial runs, for data of ``features`` features and ``classes`` classes."""


class FLConfig(ComponentConfig):
    """Base of the ``fl`` group's configs."""

    def build(self) -> FederatedLearning:
        """Create the federation's settings, with its tree built and validated."""
        raise NotImplementedError
