"""``steering=interleaved``: a separate agent keeps re-ranking a fixed pool of candidates.

The agent refits the GP and re-ranks the pool every ``opt_delay_s``; the submitter takes the
current top on each free slot.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import replace
from typing import Literal

import numpy as np
from colmena.models import Result
from colmena.queue.base import ColmenaQueues
from colmena.thinker import agent, result_processor, task_submitter
from colmena.thinker.resources import ResourceCounter
from pydantic import Field

from components.steering._campaign import (
    MIN_TRAINING,
    POOL,
    POOL_SIZE,
    SURROGATE_NOISE,
    PlannedCampaign,
    Policy,
)
from components.steering.protocol import CampaignSettings, SteeringConfig
from components.steering.surrogate import rank

log = logging.getLogger(__name__)


class InterleavedSteeringConfig(SteeringConfig):
    """A separate agent keeps re-ranking a fixed pool; the submitter takes its top."""

    kind: Literal["interleaved"] = "interleaved"
    min_training: int = MIN_TRAINING
    surrogate_noise: bool = SURROGATE_NOISE
    pool: int = POOL_SIZE
    opt_delay_s: float = Field(0.0, ge=0, le=3600, description="pause between re-rankings")

    def build(self) -> Policy:
        """The policy."""
        return Policy.of(self, InterleavedSearch)


class InterleavedSearch(PlannedCampaign):
    """A separate agent re-ranks a fixed pool while evaluations run."""

    policy = "interleaved"

    def __init__(self, queues: ColmenaQueues, settings: CampaignSettings,
                 counter: ResourceCounter | None = None) -> None:  # fmt: skip
        size = int(settings.options.get("pool", POOL))
        if size < settings.evaluations:  # each candidate is evaluated once: the pool is the budget
            log.warning("pool=%d < evaluations=%d: %d evaluations", size, settings.evaluations,
                        size)  # fmt: skip
            settings = replace(settings, evaluations=size)
        super().__init__(queues, settings, counter)
        self.pool = self.random_points(size)
        self.unused = set(range(size))
        self.min_training = int(settings.options.get("min_training", 8))
        self.opt_delay_s = float(settings.options.get("opt_delay_s", 0.0))
        self.plan(list(range(size)))  # indices into the pool, in rank order

    def take_from_pool(self) -> list[float] | None:
        """The top-ranked unused candidate."""
        index = self.take()
        if index is None:
            return None
        with self.lock:
            self.unused.discard(index)
        point: list[float] = self.pool[index].tolist()
        return point

    def rerank(self, order: np.ndarray, ranked: list[int]) -> None:
        """Plan the pool indices ``ranked`` (a snapshot of the unused) in ``order``."""
        with self.ready:
            self.planned = deque(ranked[i] for i in order.tolist() if ranked[i] in self.unused)
            self.ready.notify_all()

    @task_submitter()
    def submit(self) -> None:
        """Send the current top of the pool."""
        started = time.perf_counter()
        point = self.take_from_pool()
        if point is None or not self.send(point, started):
            self.spent()

    @result_processor()
    def receive(self, result: Result) -> None:
        """Free the slot, keep the result."""
        self.counter.release()
        self.record(result)

    @agent()
    def reprioritize(self) -> None:
        """Keep refitting and re-ranking the pool until the campaign ends."""
        trained_on = 0
        while not self.done.is_set():
            x, y = self.snapshot()
            if len(y) >= self.min_training and len(y) > trained_on:
                with self.lock:
                    unused = sorted(self.unused)
                if unused:  # else every candidate is taken: nothing left to rank
                    order = rank(x, y, self.pool[unused], self.settings.seed, self.noise)
                    self.rerank(order, unused)
                trained_on = len(y)
                self.retrains += 1
            self.done.wait(max(self.opt_delay_s, 0.01))
