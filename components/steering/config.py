"""The ``steering`` group: how a campaign is steered (Colmena Thinkers; see ``policies.py``).

``random`` (no steering), ``batch``, ``streaming``, ``interleaved``, ``reallocation``. Every
option has ``slots``: the tasks that run at once (Colmena's ``ResourceCounter``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from components.base import ComponentConfig


@dataclass(frozen=True)
class SteeringPolicy:
    """A policy as the campaign scenario builds its Thinker from it."""

    name: str
    slots: int
    options: dict[str, Any] = field(default_factory=dict)

    def thinker(self, queues: Any, settings: Any) -> Any:
        """The policy's Thinker over ``queues``."""
        from components.steering.policies import POLICIES

        return POLICIES[self.name](queues, settings)


class SteeringConfig(ComponentConfig):
    """What every policy has."""

    slots: int = Field(4, ge=1, le=100_000, description="tasks that run at once")

    def _options(self) -> dict[str, Any]:
        return self.model_dump(exclude={"kind", "slots"})

    def build(self) -> SteeringPolicy:
        """The policy."""
        return SteeringPolicy(self.kind, self.slots, self._options())


MinTraining = Field(8, ge=2, le=100_000, description="results before the first GP fit")
Pool = Field(
    1000, ge=1, le=10_000_000, description="fixed candidate pool (the best is the best of it)"
)
SurrogateNoise = Field(
    True,
    description="a WhiteKernel in the GP (false: the Colmena examples' kernel, which "
    "fits Ackley's ripples as signal)",
)


class RandomSteeringConfig(SteeringConfig):
    """No steering: uniform samples, one sent as each slot frees."""

    kind: Literal["random"] = "random"


class BatchSteeringConfig(SteeringConfig):
    """Refit the GP after each whole batch of ``slots``; send the top candidates."""

    kind: Literal["batch"] = "batch"
    surrogate_noise: bool = SurrogateNoise


class StreamingSteeringConfig(SteeringConfig):
    """Refit after every result once ``min_training`` exist; send the best fresh candidate."""

    kind: Literal["streaming"] = "streaming"
    min_training: int = MinTraining
    surrogate_noise: bool = SurrogateNoise


class InterleavedSteeringConfig(SteeringConfig):
    """A separate agent keeps re-ranking a fixed pool; the submitter takes its top."""

    kind: Literal["interleaved"] = "interleaved"
    min_training: int = MinTraining
    surrogate_noise: bool = SurrogateNoise
    pool: int = Pool
    opt_delay_s: float = Field(0.0, ge=0, le=3600, description="pause between re-rankings")


class ReallocationSteeringConfig(SteeringConfig):
    """Borrow a slot to retrain (as a task) after every ``retrain_after`` new results."""

    kind: Literal["reallocation"] = "reallocation"
    min_training: int = MinTraining
    surrogate_noise: bool = SurrogateNoise
    pool: int = Pool
    retrain_after: int = Field(5, ge=1, le=100_000, description="new results per retrain")
    retrain_wait_s: float = Field(
        0.0, ge=0, le=3600, description="least time between retrains (the demo parses it only)"
    )
