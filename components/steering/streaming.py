"""``steering=streaming``: refit the GP after every result; send the best fresh candidate.

One new point per completion; once ``min_training`` results exist, the GP is refit after
every result and the best fresh candidate goes next.
"""

from __future__ import annotations

import logging
import time
from typing import Literal

from colmena.models import Result
from colmena.queue.base import ColmenaQueues
from colmena.thinker import result_processor, task_submitter

from components.steering._campaign import (
    CANDIDATES_PER_SLOT,
    MIN_TRAINING,
    SURROGATE_NOISE,
    PlannedCampaign,
    Policy,
)
from components.steering.protocol import CampaignSettings, SteeringConfig
from components.steering.surrogate import rank

log = logging.getLogger(__name__)


class StreamingSteeringConfig(SteeringConfig):
    """Refit after every result once ``min_training`` exist; send the best fresh candidate."""

    kind: Literal["streaming"] = "streaming"
    min_training: int = MIN_TRAINING
    surrogate_noise: bool = SURROGATE_NOISE

    def build(self) -> Policy:
        """The policy."""
        return Policy.of(self, StreamingSearch)


class StreamingSearch(PlannedCampaign):
    """Refit after every result (once enough exist); the best fresh candidate goes next."""

    policy = "streaming"

    def __init__(self, queues: ColmenaQueues, settings: CampaignSettings) -> None:
        super().__init__(queues, settings)
        self.min_training = int(settings.options.get("min_training", 8))
        self.plan(self.random_points(settings.evaluations).tolist())  # until the GP is ready

    @task_submitter()
    def submit(self) -> None:
        """Send the current best candidate."""
        started = time.perf_counter()
        point = self.take()
        if point is None or not self.send(point, started):
            self.spent()

    @result_processor()
    def receive(self, result: Result) -> None:
        """Keep it; refit and re-plan once ``min_training`` results exist."""
        self.counter.release()
        self.record(result)
        x, y = self.snapshot()
        if len(y) >= self.min_training and not self.done.is_set():
            candidates = self.random_points(self.settings.slots * CANDIDATES_PER_SLOT)
            order = rank(x, y, candidates, self.settings.seed, self.noise)[: self.settings.slots]
            self.plan(candidates[order].tolist())
