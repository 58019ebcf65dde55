"""Steering policies for the optimizer campaign, as Colmena Thinkers (``optimizer-examples``).

- ``random``: no steering; uniform samples, one sent as each slot frees (Colmena has none).
- ``batch``: a batch of ``slots`` points; after the whole batch returns, refit the GP and send
  the top ``slots`` of ``slots × 1024`` random candidates.
- ``streaming``: one new point per completion; once ``min_training`` results exist, the GP is
  refit after every result and the best fresh candidate goes next.
- ``interleaved``: a separate agent keeps refitting the GP and re-ranking a fixed pool of
  candidates (every ``opt_delay_s``); the submitter takes the current top on each free slot.
- ``reallocation``: slots live in a ``sim`` pool; after every ``retrain_after`` new results (and
  at least ``retrain_wait_s`` since the last retrain) an event responder borrows one slot into
  an ``ml`` pool and runs the retrain (fit + rank) *as a task* on the executor, then gives it
  back. Colmena's demo parses its retrain wait and never uses it, and compares against the
  first threshold only, so it retrains back to back; both are wired here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from colmena.exceptions import TimeoutException
from colmena.models import Result
from colmena.queue.base import ColmenaQueues
from colmena.thinker import (
    BaseThinker,
    agent,
    event_responder,
    result_processor,
    task_submitter,
)
from colmena.thinker.resources import ResourceCounter

from components.steering.ackley import BOUND
from components.steering.counter import SafeResourceCounter
from components.steering.surrogate import rank

log = logging.getLogger(__name__)

POOL = 1000  # the interleaved and reallocation examples' fixed candidate pool
RETRAIN_TIMEOUT_S = 600.0
CANDIDATES_PER_SLOT = 1024


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


class Campaign(BaseThinker):
    """What the policies share: the database of results, sending, and the stop rule."""

    policy = "base"

    def __init__(
        self, queues: ColmenaQueues, settings: CampaignSettings,
        counter: ResourceCounter | None = None,
    ) -> None:  # fmt: skip
        super().__init__(queues, counter or SafeResourceCounter(settings.slots))
        self.settings = settings
        self.rng = np.random.default_rng(settings.seed)
        self.lock = threading.Lock()
        self.results: list[Result] = []
        self.x: list[list[float]] = []
        self.y: list[float] = []
        self.sent = 0
        self.decisions_s: list[float] = []
        self.retrains = 0
        self.noise = bool(settings.options.get("surrogate_noise", True))
        self.outside_events = 0

    @property
    def counter(self) -> ResourceCounter:
        """The campaign's slots (always set: every policy builds one)."""
        assert self.rec is not None
        return self.rec

    def random_points(self, count: int) -> np.ndarray:
        """Uniform points in the box."""
        bound = self.settings.bound
        return self.rng.uniform(-bound, bound, (count, self.settings.dim))

    def spent(self, pool: str | None = None) -> None:
        """The budget is spent: hold the slot this submitter took until the end, then free it.

        Freeing it at once would let the submitter's loop take and free it again until the
        last results arrive (a busy loop); keeping it would end the campaign with a slot lost.
        """
        self.done.wait()
        self.counter.release(pool)

    def send(self, x: list[float], started: float) -> bool:
        """Send one evaluation (False once the budget is spent); ``started``: decision began."""
        with self.lock:
            if self.sent >= self.settings.evaluations:
                return False
            index = self.sent
            self.sent += 1
        s = self.settings
        crash = s.crash_attempts if s.crash_every and (index + 1) % s.crash_every == 0 else 0
        timed = (s.runtimes[index],) if s.runtimes else ()  # Ackley's evaluations sleep
        point = [float(v) for v in x]
        # The point rides in task_info, so results need not carry the inputs back (the digits
        # campaign's data would double every result message).
        self.queues.send_inputs(
            point, *timed, method=s.method, keep_inputs=False,
            input_kwargs={"crash_attempts": crash, **s.task_kwargs}, max_retries=s.max_retries,
            task_info={"index": index, "x": point},
        )  # fmt: skip
        self.decisions_s.append(time.perf_counter() - started)
        return True

    def record(self, result: Result) -> None:
        """Keep a result; the campaign is done when every evaluation came back."""
        with self.lock:
            self.results.append(result)
            if result.success:
                self.x.append(list((result.task_info or {})["x"]))
                self.y.append(float(result.value))
            if len(self.results) >= self.settings.evaluations:
                self.done.set()

    @agent(startup=True)
    def listen(self) -> None:
        """Let events from any producer on the fabric steer the campaign.

        An event ``{"event": NAME}`` sets the Thinker's ``threading.Event`` called NAME, which
        wakes the event responders of that name (``reallocation``: ``retrain``); ``stop`` ends
        the campaign (tasks running finish and are kept). Other events are counted only.
        """
        outside = self.settings.outside
        while outside is not None and not self.done.is_set():
            for event in outside.poll(100, 0.1):
                self.outside_events += 1
                name = event.value.get("event") if isinstance(event.value, dict) else None
                if name == "stop":
                    self.done.set()
                elif isinstance(getattr(self, str(name), None), threading.Event):
                    getattr(self, str(name)).set()

    def snapshot(self) -> tuple[list[list[float]], list[float]]:
        """The database so far."""
        with self.lock:
            return list(self.x), list(self.y)


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


class _Planned(Campaign):
    """A queue of planned points that the submitter takes from (waiting while it is empty)."""

    def __init__(self, queues: ColmenaQueues, settings: CampaignSettings,
                 counter: ResourceCounter | None = None) -> None:  # fmt: skip
        super().__init__(queues, settings, counter)
        self.planned: deque[Any] = deque()  # points, or (pool policies) indices into the pool
        self.ready = threading.Condition(self.lock)

    def take(self) -> Any:
        """The next planned item; None once the campaign is done."""
        with self.ready:
            while not self.planned:
                if self.done.is_set() or self.sent >= self.settings.evaluations:
                    return None
                self.ready.wait(0.05)
            return self.planned.popleft()

    def plan(self, items: list[Any]) -> None:
        """Replace the plan."""
        with self.ready:
            self.planned = deque(items)
            self.ready.notify_all()


class BatchSearch(_Planned):
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


class StreamingSearch(_Planned):
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


class InterleavedSearch(_Planned):
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
        event_name="retrain", reallocate_resources=True, gather_from="sim", gather_to="ml",
        disperse_to="sim", max_slots=1,
    )  # fmt: skip
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
        self.queues.send_inputs(x, y, self.pool[unused], self.settings.seed, self.noise,
                                method="rank", topic="ml")  # fmt: skip
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


POLICIES: dict[str, type[Campaign]] = {
    p.policy: p
    for p in (RandomSearch, BatchSearch, StreamingSearch, InterleavedSearch, ReallocatingSearch)
}
