"""``steering=random``: no steering; uniform samples, one sent as each slot frees.

Colmena has no such Thinker; this is the baseline the steered policies are measured against.
"""

from __future__ import annotations

import logging
import time
from typing import Literal

from colmena.models import Result
from colmena.thinker import result_processor, task_submitter

from components.steering._campaign import (
    Campaign,
    Policy,
)
from components.steering.protocol import SteeringConfig

log = logging.getLogger(__name__)


class RandomSteeringConfig(SteeringConfig):
    """No steering: uniform samples, one sent as each slot frees."""

    kind: Literal["random"] = "random"

    def build(self) -> Policy:
        """The policy."""
        return Policy.of(self, RandomSearch)


class RandomSearch(Campaign):
    """No steering: a uniform sample on every free slot."""

    policy = "random"

    @task_submitter()
    def submit(self) -> None:
        """Send a random point."""
        started = time.perf_counter()
        if not self.send(self.random_points(1)[0].tolist(), started):
            self.spent()

    @result_processor()
    def receive(self, result: Result) -> None:
        """Free the slot, keep the result."""
        self.counter.release()
        self.record(result)
