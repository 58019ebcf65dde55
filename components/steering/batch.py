"""``steering=batch``: refit the GP after each whole batch of ``slots`` points.

After the whole batch returns, the GP is refit and the top ``slots`` of ``slots × 1024``
random candidates go next.
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
    SURROGATE_NOISE,
    PlannedCampaign,
    Policy,
)
from components.steering.protocol import CampaignSettings, SteeringConfig
from components.steering.surrogate import rank

log = logging.getLogger(__name__)


class BatchSteeringConfig(SteeringConfig):
    """Refit the GP after each whole batch of ``slots``; send the top candidates."""

    kind: Literal["batch"] = "batch"
    surrogate_noise: bool = SURROGATE_NOISE

    def build(self) -> Policy:
        """The policy."""
        return Policy.of(self, BatchSearch)


class BatchSearch(PlannedCampaign):
    """Refit after each whole batch; send the next batch's top candidates."""

    policy = "batch"

    def __init__(self, queues: ColmenaQueues, settings: CampaignSettings) -> None:
        super().__init__(queues, settings)
        self.plan(self.random_points(settings.slots).tolist())
        self.in_batch = 0

    @task_submitter()
    def submit(self) -> None:
        """Send the next point of the batch."""
        point = self.take()
        if point is None or not self.send(point, time.perf_counter()):
            self.spent()

    @result_processor()
    def receive(self, result: Result) -> None:
        """After the whole batch: refit, plan the next."""
        self.counter.release()
        self.record(result)
        self.in_batch += 1
        remaining = self.settings.evaluations - len(self.results)
        if self.in_batch >= self.settings.slots and remaining > 0:
            self.in_batch = 0
            x, y = self.snapshot()
            size = min(self.settings.slots, remaining)
            candidates = self.random_points(self.settings.slots * CANDIDATES_PER_SLOT)
            best = rank(x, y, candidates, self.settings.seed, self.noise)[:size]
            self.plan(candidates[best].tolist())
