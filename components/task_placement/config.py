"""The ``task_placement`` group: how a batch of tasks is spread over the ``endpoints``.

``single`` (one endpoint), ``round_robin``, ``fastest`` (each task where its predicted
runtime is least), ``least_energy`` (where its predicted dynamic energy is least), ``mhra``
and ``cluster_mhra`` (GreenFaaS's strategies, objective α·E/E_norm + (1−α)·T/T_norm).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from components.task_placement.protocol import TaskPlacementConfig, TaskPlacer

Alpha = Field(0.5, ge=0, le=1, description="weight of energy against time (0: time only)")
Faithful = Field(
    False, description="reproduce the authors' quirk: a candidate's own cold start left out"
)


class SingleConfig(TaskPlacementConfig):
    """Every task on one endpoint."""

    kind: Literal["single"] = "single"
    endpoint: str = Field("faster", min_length=1, description="the endpoint's name")

    def build(self) -> TaskPlacer:
        """The placer."""
        from components.task_placement.strategies import SingleEndpoint

        return SingleEndpoint(self.endpoint)


class RoundRobinConfig(TaskPlacementConfig):
    """Task i on endpoint i mod M, in the endpoints' order."""

    kind: Literal["round_robin"] = "round_robin"

    def build(self) -> TaskPlacer:
        """The placer."""
        from components.task_placement.strategies import RoundRobin

        return RoundRobin()


class FastestConfig(TaskPlacementConfig):
    """Each task on the endpoint with its least predicted runtime."""

    kind: Literal["fastest"] = "fastest"

    def build(self) -> TaskPlacer:
        """The placer."""
        from components.task_placement.strategies import Fastest

        return Fastest()


class LeastEnergyConfig(TaskPlacementConfig):
    """Each task on the endpoint with its least predicted dynamic energy."""

    kind: Literal["least_energy"] = "least_energy"

    def build(self) -> TaskPlacer:
        """The placer."""
        from components.task_placement.strategies import LeastEnergy

        return LeastEnergy()


class MhraConfig(TaskPlacementConfig):
    """MHRA: five task orderings, each task greedily where the objective is least."""

    kind: Literal["mhra"] = "mhra"
    alpha: float = Alpha
    faithful: bool = Faithful

    def build(self) -> TaskPlacer:
        """The placer."""
        from components.task_placement.strategies import Mhra

        return Mhra(self.alpha, self.faithful)


class ClusterMhraConfig(TaskPlacementConfig):
    """ClusterMHRA: Ward clusters of similar tasks, each placed whole as MHRA would."""

    kind: Literal["cluster_mhra"] = "cluster_mhra"
    alpha: float = Alpha
    faithful: bool = Field(
        False,
        description="reproduce the authors' bug (the last-evaluated endpoint's predictions "
        "are committed to the chosen one) and their cold-start quirk",
    )
    threshold_share: float = Field(
        0.25,
        gt=0,
        le=100,
        description="merge threshold: this share of the largest idle-tail energy",
    )

    def build(self) -> TaskPlacer:
        """The placer."""
        from components.task_placement.clusters import ClusterMhra

        return ClusterMhra(self.alpha, self.faithful, self.threshold_share)
