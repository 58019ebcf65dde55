"""Triggers: a handler bound to a topic, run on an executor for events matching a filter.

Like an AWS Lambda event-source mapping (what Octopus's triggers are): a consumer group per
trigger reads batches; events that pass the filter go to the handler in calls of
``batch_size`` events, at most ``concurrency`` calls at once on the run's executor. A call
that raises is retried ``max_retries`` times with doubling backoff, then its events go to the
dead-letter topic, as do events that cannot be decoded. Offsets are committed after every
event of a poll was handled or dead-lettered, so a restarted trigger resumes where it
stopped: at-least-once, nothing skipped.
"""

from __future__ import annotations

import heapq
import importlib
import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from components.events.clients import FabricProducer, dead_letter_sink
from components.events.filters import compile_filter
from components.events.protocol import Event, EventsError
from components.events.topology import TriggerSpec

if TYPE_CHECKING:
    from components.events.fabric import Session

log = logging.getLogger(__name__)

Chunk = list[tuple[Event, dict[str, Any]]]  # one handler call's events and their records


def invoke(
    handler: str, records: list[dict[str, Any]], context: dict[str, Any], args: dict[str, Any]
) -> Any:
    """Import ``module:function`` and call it (runs on the executor, any process)."""
    module, _, function = handler.partition(":")
    return getattr(importlib.import_module(module), function)(records, context, **args)


def _put(
    finished: queue.SimpleQueue[tuple[Future[Any], int, int, Chunk]],
    order: int,
    attempt: int,
    chunk: Chunk,
    future: Future[Any],
) -> None:
    finished.put((future, order, attempt, chunk))


@dataclass
class TriggerStats:
    """What a trigger did so far."""

    received: int = 0
    matched: int = 0
    handled: int = 0
    handler_failures: int = 0
    retries: int = 0
    dead_lettered: int = 0
    malformed: int = 0
    latencies_ms: list[float] = field(default_factory=list)


class Trigger:
    """One running trigger; stop it (or close the fabric) to commit and leave its group."""

    def __init__(self, session: Session, spec: TriggerSpec, executor: Any) -> None:
        self.spec = spec
        self.executor = executor
        self.stats = TriggerStats()
        self._match = compile_filter(spec.filter)
        topic = session.fabric.config.full_topic(spec.topic)
        dlq_name = spec.dead_letter_topic or f"{topic.split('.', 1)[1]}-dlq"
        self.dead_letter_topic = f"{topic.split('.', 1)[0]}.{dlq_name}"
        self._ensure_topic(session, self.dead_letter_topic)
        self._dlq_producer: FabricProducer = session.producer()
        self._dlq = dead_letter_sink(self._dlq_producer, self.dead_letter_topic)
        self.consumer = session.consumer(
            [topic],
            group=f"trigger-{spec.name}",
            value_format=spec.value_format,
            dead_letter_topic=self.dead_letter_topic,
        )
        # Read whole polls, not one call's worth: a trigger whose filter matches few events
        # would otherwise commit once per handful of events read.
        self._poll_events = max(
            spec.batch_size * spec.concurrency, session.fabric.config.consumer.max_poll_events
        )
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"trigger-{spec.name}", daemon=True)
        self._thread.start()

    @staticmethod
    def _ensure_topic(session: Session, full: str) -> None:
        if full not in session.fabric.topic_names():
            owner = session.fabric.session(full.split(".", 1)[0])
            owner.create_topic(full.split(".", 1)[1], partitions=1)

    def _run(self) -> None:
        spec = self.spec
        try:
            while not self._stop.is_set():
                batch = self.consumer.poll(self._poll_events, 0.1)
                self.stats.malformed = self.consumer.malformed
                if not batch:
                    continue
                self.stats.received += len(batch)
                self._handle(list(batch))
                self._dlq_producer.flush()  # dead letters are durable before the commit
                self.consumer.commit()
        except BaseException as exc:  # surfaced by stop() and by the scenario
            self.error = exc
            log.exception("trigger %s stopped", spec.name)

    def _handle(self, events: list[Event]) -> None:
        """Handle a poll's matching events; return once each was handled or dead-lettered.

        At most ``concurrency`` calls run at once. A failed call waits out its backoff
        while the other calls go on, so one poison event delays only its own batch.
        """
        records = [(e, e.as_record()) for e in events]
        matched = [(e, r) for e, r in records if self._match(r)]
        self.stats.matched += len(matched)
        size = self.spec.batch_size
        # (ready at, order, attempt, chunk): the earliest ready first, then in offset order
        waiting: list[tuple[float, int, int, Chunk]] = [
            (0.0, i, 0, matched[i : i + size]) for i in range(0, len(matched), size)
        ]
        finished: queue.SimpleQueue[tuple[Future[Any], int, int, Chunk]] = queue.SimpleQueue()
        running = 0
        while waiting or running:
            now = time.monotonic()
            while running < self.spec.concurrency and waiting and waiting[0][0] <= now:
                _, order, attempt, chunk = heapq.heappop(waiting)
                future = self._submit(chunk, attempt)
                future.add_done_callback(partial(_put, finished, order, attempt, chunk))
                running += 1
            if not running:
                time.sleep(max(0.0, waiting[0][0] - now))
                continue
            future, order, attempt, chunk = finished.get()
            running -= 1
            self._settle(future, order, attempt, chunk, waiting)

    def _settle(
        self, future: Future[Any], order: int, attempt: int, chunk: Chunk, waiting: list[Any]
    ) -> None:
        """Count a finished call; queue a failed one for retry, or dead-letter it."""
        error = future.exception()
        if error is None:
            self.stats.handled += len(chunk)
            done_ms = time.time() * 1000
            self.stats.latencies_ms += [done_ms - r["timestamp"] for _, r in chunk]
            return
        self.stats.handler_failures += 1
        if attempt < self.spec.max_retries:
            self.stats.retries += 1
            ready = time.monotonic() + self.spec.retry_backoff_s * 2**attempt
            heapq.heappush(waiting, (ready, order, attempt + 1, chunk))
            return
        reason = f"handler failed {attempt + 1} times: {type(error).__name__}: {error}"
        for event, _ in chunk:
            self._dlq(event.message, reason)
        self.stats.dead_lettered += len(chunk)

    def _submit(self, chunk: Chunk, attempt: int) -> Future[Any]:
        context = {"trigger": self.spec.name, "attempt": attempt}
        future: Future[Any] = self.executor.submit(
            invoke, self.spec.handler, [r for _, r in chunk], context, self.spec.handler_args
        )
        return future

    @property
    def running(self) -> bool:
        """Whether the trigger's loop is alive."""
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Finish the batch in hand, commit, and leave the consumer group."""
        self._stop.set()
        self._thread.join(timeout_s)
        self.consumer.close()
        if self.error is not None:
            raise EventsError(f"trigger {self.spec.name!r} failed: {self.error}")
