"""The ``steering`` area's contracts: the policy a campaign is steered by, and its settings.

A policy turns into a Colmena Thinker over the campaign's queues (``thinker``). Every option
has ``slots``: the tasks that run at once (Colmena's ``ResourceCounter``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from colmena.models import Result
from colmena.queue.base import ColmenaQueues
from pydantic import Field

from components.base import ComponentConfig
from components.steering.ackley import BOUND


@dataclass(frozen=True)
class CampaignSettings:
    """What every policy needs.

    Attributes:
        evaluations: Evaluations in all.
        slots: Tasks that run at once.
        dim: Dimensions of the search space.
        runtimes: Each evaluation's time, by submission index.
        seed: Seed of every random choice.
        max_retries: Retries of a failed evaluation.
        crash_every: Every k-th evaluation crashes on its first ``crash_attempts`` attempts.
        crash_attempts: See ``crash_every``.
        options: The policy's own settings.
        method: The evaluation task's function name.
        bound: The search box is [−bound, bound]^dim.
        task_kwargs: Keyword arguments every evaluation gets (the digits campaign's data).
        outside: A consumer of fabric events that steer the campaign (see ``Campaign.listen``).

    """

    evaluations: int
    slots: int
    dim: int
    runtimes: list[float]
    seed: int
    max_retries: int = 0
    crash_every: int = 0
    crash_attempts: int = 1
    options: dict[str, Any] = field(default_factory=dict)
    method: str = "evaluate"
    bound: float = BOUND
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    outside: Any = None


class CampaignThinker(Protocol):
    """A running campaign as its scenario watches it: a Colmena Thinker and its record."""

    done: threading.Event
    results: list[Result]
    decisions_s: list[float]
    retrains: int
    outside_events: int
    agent_errors: list[str]
    daemon: bool  # a Thread's: set before start() so that a stuck campaign cannot hold the exit

    def start(self) -> None:
        """Start the Thinker's agents (a thread)."""

    def join(self, timeout: float | None = None) -> None:
        """Wait for the campaign to end."""

    def is_alive(self) -> bool:
        """Whether the campaign still runs."""


@runtime_checkable
class SteeringPolicy(Protocol):
    """What the ``steering`` group gives a campaign."""

    @property
    def name(self) -> str:
        """The option's name (``random``, ``batch``, ...)."""

    @property
    def slots(self) -> int:
        """Tasks that run at once."""

    @property
    def options(self) -> dict[str, Any]:
        """The policy's own settings."""

    def thinker(self, queues: ColmenaQueues, settings: CampaignSettings) -> CampaignThinker:
        """The policy's Thinker over ``queues``."""


class SteeringConfig(ComponentConfig):
    """What every policy has."""

    slots: int = Field(4, ge=1, le=100_000, description="tasks that run at once")

    def options(self) -> dict[str, Any]:
        """The policy's own settings (everything but ``kind`` and ``slots``)."""
        return self.model_dump(exclude={"kind", "slots"})

    def build(self) -> SteeringPolicy:
        """The policy."""
        raise NotImplementedError
