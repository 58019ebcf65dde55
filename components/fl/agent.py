"""A Colmena agent that steers a federation from its round events on the event fabric.

The federation reports every round it completes as an event (JSON) on a *reports* topic:
the round, the hour the next round may start, the accuracy, and the training energy and
devices of each site. The agent — a Colmena Thinker whose one agent listens to that topic —
passes what was measured to its participation schedule (:meth:`Schedule.observe`), asks it
for the next round's plan and publishes the plan on a *plans* topic; the federation waits for
the plan of its next round (:class:`PlanChannel`), at most ``timeout_s``.

Both sides key everything by round, so an event delivered twice (a producer's retry across a
broker restart) changes nothing: the agent answers a round it planned already with the same
plan, and the federation keeps the first plan of a round. Round ``-1`` asks for the first
plan; a report with ``"end": true`` stops the agent.

:func:`steering_over` wires both sides over two fresh topics of a fabric session.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from colmena.queue.base import ColmenaQueues
from colmena.queue.python import PipeQueues
from colmena.thinker import BaseThinker, agent

from components.fl.participation import RoundPlan, Schedule

log = logging.getLogger(__name__)

POLL_S = 0.05  # how long a poll waits: how soon the agent notices it is done


class ParticipationAgent(BaseThinker):
    """Plans each round of a federation as the round before it completes.

    Args:
        queues: The Thinker's Colmena queues (the agent submits no tasks: its work is the
            plan, its input the fabric's events).
        schedule: The participation schedule that plans the rounds.
        reports: A fabric consumer of the reports topic (assigned already).
        producer: A fabric producer for the plans.
        plans_topic: Where the plans go.
        flush_s: How long publishing a plan may wait for the broker's acknowledgement.

    """

    def __init__(
        self,
        queues: ColmenaQueues,
        schedule: Schedule,
        reports: Any,
        producer: Any,
        plans_topic: str,
        *,
        flush_s: float = 30.0,
    ) -> None:
        super().__init__(queues, daemon=True)
        self.schedule = schedule
        self.reports = reports
        self.producer = producer
        self.plans_topic = plans_topic
        self.flush_s = flush_s
        self.planned: dict[int, RoundPlan] = {}
        self.reports_taken = 0
        self.duplicates = 0
        self.decisions_s: list[float] = []
        self.error: str | None = None

    @agent
    def steer(self) -> None:
        """Answer each round's report with the next round's plan until told the run ended."""
        try:
            while not self.done.is_set():
                for event in self.reports.poll(100, POLL_S):
                    if not self._answer(event.value):
                        return
        except Exception as exc:  # the federation's timeout names this, not an empty wait
            self.error = f"{type(exc).__name__}: {exc}"
            raise

    def _answer(self, report: Mapping[str, Any]) -> bool:
        """Plan the round after ``report``'s; False once the run has ended."""
        self.reports_taken += 1
        if report.get("end"):
            return False
        index = int(report["round"]) + 1
        began = time.perf_counter()
        plan = self.planned.get(index)
        if plan is None:
            if index > 0:
                self.schedule.observe(report["kwh"], report["devices"])
            plan = self.planned[index] = self.schedule.next_round(index, float(report["next_hour"]))
        else:
            self.duplicates += 1
        message = {"round": index, "hour": plan.hour, "devices": dict(plan.devices)}
        self.producer.produce(self.plans_topic, message, key=str(index))
        self.producer.flush(self.flush_s)
        self.decisions_s.append(time.perf_counter() - began)
        return True


class PlanChannel:
    """The federation's side: report rounds, wait for the agent's plans.

    Args:
        producer: A fabric producer (JSON values) for the reports.
        reports_topic: Where the reports go.
        plans: A fabric consumer of the plans topic (assigned already).
        timeout_s: How long a round waits for its plan.

    """

    def __init__(self, producer: Any, reports_topic: str, plans: Any, timeout_s: float) -> None:
        self.producer = producer
        self.reports_topic = reports_topic
        self.plans = plans
        self.timeout_s = timeout_s
        self.received: dict[int, RoundPlan] = {}
        self.reports_sent = 0
        self.plans_taken = 0
        self.waits_s: list[float] = []

    def report(self, message: Mapping[str, Any]) -> None:
        """Publish a round's report and wait for the broker to acknowledge it."""
        key = str(message.get("round", "end"))
        self.producer.produce(self.reports_topic, dict(message), key=key)
        self.producer.flush(self.timeout_s)
        self.reports_sent += 1

    def plan(self, index: int, why_not: Any = None) -> RoundPlan:
        """The agent's plan of round ``index``.

        Args:
            index: The round.
            why_not: Called on a timeout for the agent's own error, if it has one.

        Raises:
            TimeoutError: No plan came within ``timeout_s``; names the agent's error.

        """
        began = time.monotonic()
        deadline = began + self.timeout_s
        while index not in self.received:
            left = deadline - time.monotonic()
            if left <= 0:
                cause = why_not() if why_not is not None else None
                raise TimeoutError(
                    f"no plan for round {index} from the steering agent within "
                    f"{self.timeout_s:g} s" + (f": the agent failed ({cause})" if cause else "")
                )
            for event in self.plans.poll(100, min(left, POLL_S * 4)):
                self.plans_taken += 1
                value = event.value
                self.received.setdefault(
                    int(value["round"]),
                    RoundPlan(
                        float(value["hour"]), {s: int(n) for s, n in value["devices"].items()}
                    ),
                )
        self.waits_s.append(time.monotonic() - began)
        return self.received[index]


@contextmanager
def steering_over(
    session: Any, chooser: Schedule, timeout_s: float
) -> Iterator[tuple[ParticipationAgent, PlanChannel]]:
    """A running agent and the federation's channel to it, over two fresh topics.

    The topics are made in ``session``'s namespace and deleted at exit. At a normal exit the
    agent is given ``timeout_s`` to read the last round's report (it stops there); then it is
    told to stop either way.

    Args:
        session: A fabric session (``components.events.fabric.Session``).
        chooser: The schedule the agent plans with.
        timeout_s: How long a round waits for its plan, and a publish for its acknowledgement.

    """
    prefix = f"fl-{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}-rounds", f"{prefix}-plans"]
    reports_topic, plans_topic = (session.create_topic(n) for n in names)
    try:
        prompt = session.prompt_settings()  # both wait for one message at a time
        reports = session.consumer(
            [reports_topic], group=f"{prefix}-agent", value_format="json", **prompt
        )
        plans = session.consumer(
            [plans_topic], group=f"{prefix}-rounds", value_format="json", **prompt
        )
        with ThreadPoolExecutor(2) as pool:  # both ready before the first event; joins overlap
            list(pool.map(lambda consumer: consumer.wait_assigned(1), (reports, plans)))
        agent = ParticipationAgent(
            PipeQueues(),
            chooser,
            reports,
            session.producer(value_format="json", **{"linger.ms": 0}),
            plans_topic,
            flush_s=timeout_s,
        )
        channel = PlanChannel(
            session.producer(value_format="json", **{"linger.ms": 0}),
            reports_topic,
            plans,
            timeout_s,
        )
        agent.start()
        try:
            yield agent, channel
            agent.join(timeout_s)  # it stops at the last round's report: let it read that
        finally:
            agent.done.set()
            agent.join(timeout_s)
            for consumer in (reports, plans):
                consumer.close(5.0)
    finally:
        for name in names:
            session.delete_topic(name)
