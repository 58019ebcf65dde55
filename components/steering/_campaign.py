"""What the steering policies share: the campaign Thinker, its queue, the pool search, fields.

The pool search is ``interleaved``'s Thinker; ``reallocation`` builds on it.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from colmena.models import Result
from colmena.queue.base import ColmenaQueues
from colmena.thinker import BaseThinker, agent, result_processor, task_submitter
from colmena.thinker.resources import ResourceCounter
from pydantic import Field

from components.steering._counter import SafeResourceCounter
from components.steering.protocol import CampaignSettings, SteeringConfig
from components.steering.surrogate import rank

log = logging.getLogger(__name__)

POOL = 1000  # the interleaved and reallocation examples' fixed candidate pool
RETRAIN_TIMEOUT_S = 600.0
CANDIDATES_PER_SLOT = 1024


class Campaign(BaseThinker):
    """What the policies share: the database of results, sending, and the stop rule."""

    policy = "base"

    def __init__(
        self,
        queues: ColmenaQueues,
        settings: CampaignSettings,
        counter: ResourceCounter | None = None,
    ) -> None:
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
        self.agent_errors: list[str] = []

    def list_agents(self) -> list[Callable[..., Any]]:  # type: ignore[override]
        """Colmena's agents, each recording the exception that ends it.

        Colmena logs an agent's exception and stops the campaign; a campaign that ends early
        would then look like one with no results. The record lets the scenario name the cause.
        """
        return [self._recorded(agent) for agent in super().list_agents()]

    @staticmethod
    def _recorded(agent: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(agent)  # keeps Colmena's marks (agent type, startup, event name)
        def run(thinker: Campaign) -> Any:
            try:
                return agent(thinker)
            except BaseException as exc:
                thinker.agent_errors.append(f"{agent.__name__}: {type(exc).__name__}: {exc}")
                raise

        return run

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
            point,
            *timed,
            method=s.method,
            keep_inputs=False,
            input_kwargs={"crash_attempts": crash, **s.task_kwargs},
            max_retries=s.max_retries,
            task_info={"index": index, "x": point},
        )
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


class PlannedCampaign(Campaign):
    """A queue of planned points that the submitter takes from (waiting while it is empty)."""

    def __init__(
        self,
        queues: ColmenaQueues,
        settings: CampaignSettings,
        counter: ResourceCounter | None = None,
    ) -> None:
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


class InterleavedSearch(PlannedCampaign):
    """A separate agent re-ranks a fixed pool while evaluations run."""

    policy = "interleaved"

    def __init__(
        self,
        queues: ColmenaQueues,
        settings: CampaignSettings,
        counter: ResourceCounter | None = None,
    ) -> None:
        size = int(settings.options.get("pool", POOL))
        if size < settings.evaluations:  # each candidate is evaluated once: the pool is the budget
            log.warning(
                "pool=%d < evaluations=%d: %d evaluations", size, settings.evaluations, size
            )
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


@dataclass(frozen=True)
class Policy:
    """A steering option, built: its name, slots, settings and Thinker class."""

    name: str
    slots: int
    options: dict[str, Any]
    campaign: type[Campaign]

    def thinker(self, queues: ColmenaQueues, settings: CampaignSettings) -> Campaign:
        """The policy's Thinker over ``queues``."""
        return self.campaign(queues, settings)

    @classmethod
    def of(cls, config: SteeringConfig, campaign: type[Campaign]) -> Policy:
        """The policy a config describes, run by ``campaign``."""
        return cls(config.kind, config.slots, config.options(), campaign)


MIN_TRAINING = Field(8, ge=2, le=100_000, description="results before the first GP fit")
POOL_SIZE = Field(
    1000, ge=1, le=10_000_000, description="fixed candidate pool (the best is the best of it)"
)
SURROGATE_NOISE = Field(
    True,
    description="a WhiteKernel in the GP (false: the Colmena examples' kernel, which "
    "fits Ackley's ripples as signal)",
)
