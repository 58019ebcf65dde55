"""``steering=reallocation``: borrow a slot to retrain, as a task, every few results.

Slots live in a ``sim`` pool; after every ``retrain_after`` new results (and at least
``retrain_wait_s`` since the last retrain) an event responder borrows one slot into an ``ml``
pool and runs the retrain (fit + rank) *as a task* on the executor, then gives it back.
Colmena's demo parses its retrain wait and never uses it, and compares against the first
threshold only, so it retrains back to back; both are wired here.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Literal

import numpy as np
from colmena.exceptions import TimeoutException
from colmena.models import Result
from colmena.queue.base import ColmenaQueues
from colmena.thinker import event_responder, result_processor, task_submitter
from pydantic import Field

from components.steering._campaign import (
    MIN_TRAINING,
    POOL_SIZE,
    RETRAIN_TIMEOUT_S,
    SURROGATE_NOISE,
    InterleavedSearch,
    Policy,
)
from components.steering._counter import SafeResourceCounter
from components.steering.protocol import CampaignSettings, SteeringConfig

log = logging.getLogger(__name__)


class ReallocationSteeringConfig(SteeringConfig):
    """Borrow a slot to retrain (as a task) after every ``retrain_after`` new results."""

    kind: Literal["reallocation"] = "reallocation"
    min_training: int = MIN_TRAINING
    surrogate_noise: bool = SURROGATE_NOISE
    pool: int = POOL_SIZE
    retrain_after: int = Field(5, ge=1, le=100_000, description="new results per retrain")
    retrain_wait_s: float = Field(
        0.0, ge=0, le=3600, description="least time between retrains (the demo parses it only)"
    )

    def build(self) -> Policy:
        """The policy."""
        return Policy.of(self, ReallocatingSearch)


class ReallocatingSearch(InterleavedSearch):
    """Borrow a slot to retrain as a task; give it back after."""

    policy = "reallocation"

    def __init__(self, queues: ColmenaQueues, settings: CampaignSettings) -> None:
        counter = SafeResourceCounter(settings.slots, ["sim", "ml"])
        counter.reallocate(None, "sim", settings.slots)
        super().__init__(queues, settings, counter)
        self.retrain_after = int(settings.options.get("retrain_after", 5))
        self.retrain_wait_s = float(settings.options.get("retrain_wait_s", 0.0))
        self.retrain = threading.Event()
        self.trained_on = 0
        self.last_retrain = -float("inf")
        self.retrain_s: list[float] = []

    @task_submitter(task_type="sim")
    def submit(self) -> None:
        """Send the current top of the pool."""
        started = time.perf_counter()
        point = self.take_from_pool()
        if point is None or not self.send(point, started):
            self.spent("sim")

    @result_processor(topic="default")
    def receive(self, result: Result) -> None:
        """Free the sim slot, keep the result; ask for a retrain when enough are new."""
        self.counter.release("sim")
        self.record(result)
        new = len(self.y) - self.trained_on
        waited = time.monotonic() - self.last_retrain >= self.retrain_wait_s
        if len(self.y) >= self.min_training and new >= self.retrain_after and waited:
            self.retrain.set()

    def reprioritize(self) -> None:
        """Not an agent here: ranking is the retrain task's job.

        An agent that returns would end the campaign, so this one must not be decorated.
        """

    @event_responder(
        event_name="retrain",
        reallocate_resources=True,
        gather_from="sim",
        gather_to="ml",
        disperse_to="sim",
        max_slots=1,
    )
    def retrain_model(self) -> None:
        """Take the borrowed slot, run fit + rank as a task, re-rank the pool."""
        if not self.counter.acquire("ml", 1, cancel_if=self.done):
            return
        started = time.perf_counter()
        x, y = self.snapshot()
        with self.lock:
            unused = sorted(self.unused)
        self.trained_on = len(y)
        if not unused:  # every candidate is taken: nothing left to rank
            self.counter.release("ml")
            return
        self.queues.send_inputs(
            x, y, self.pool[unused], self.settings.seed, self.noise, method="rank", topic="ml"
        )
        # Wait for the result even when the campaign ended meanwhile: a result left unread
        # blocks the server's sender on the pipe, and the thinker waits for it forever.
        result = None
        deadline = time.monotonic() + RETRAIN_TIMEOUT_S
        while result is None and time.monotonic() < deadline:
            try:
                result = self.queues.get_result(topic="ml", timeout=0.1)
            except TimeoutException:
                continue
        self.counter.release("ml")
        if result is not None and not result.success:
            log.warning("retrain task failed: %s", result.failure_info)
        if result is not None and result.success:
            self.rerank(np.asarray(result.value), unused)
            self.retrains += 1
        self.retrain_s.append(time.perf_counter() - started)
        self.last_retrain = time.monotonic()
