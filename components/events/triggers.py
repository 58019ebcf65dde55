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

import importlib
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from components.events.base import Event, EventsError
from components.events.clients import FabricProducer, dead_letter_sink
from components.events.filters import compile_filter
from components.events.topology import TriggerSpec

if TYPE_CHECKING:
    from components.events.fabric import Session

log = logging.getLogger(__name__)


def invoke(
    handler: str, records: list[dict[str, Any]], context: dict[str, Any], args: dict[str, Any]
) -> Any:
    """Import ``module:function`` and call it (runs on the executor, any process)."""
    module, _, function = handler.partition(":")
    return getattr(importlib.import_module(module), function)(records, context, **args)


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
                batch = self.consumer.poll(spec.batch_size * spec.concurrency, 0.1)
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
        records = [(e, e.as_record()) for e in events]
        matched = [(e, r) for e, r in records if self._match(r)]
        self.stats.matched += len(matched)
        size = self.spec.batch_size
        pending = [matched[i : i + size] for i in range(0, len(matched), size)]
        attempt = 0
        while pending:
            futures = [(chunk, self._submit(chunk, attempt)) for chunk in pending]
            failed: list[tuple[list[tuple[Event, dict[str, Any]]], BaseException]] = []
            for chunk, future in futures:
                error = future.exception()
                if error is None:
                    self.stats.handled += len(chunk)
                    done_ms = time.time() * 1000
                    self.stats.latencies_ms += [done_ms - r["timestamp"] for _, r in chunk]
                else:
                    self.stats.handler_failures += 1
                    failed.append((chunk, error))
            if not failed:
                return
            if attempt >= self.spec.max_retries:
                for chunk, error in failed:
                    reason = f"handler failed {attempt + 1} times: {type(error).__name__}: {error}"
                    for event, _ in chunk:
                        self._dlq(event.message, reason)
                    self.stats.dead_lettered += len(chunk)
                return
            time.sleep(self.spec.retry_backoff_s * 2**attempt)
            attempt += 1
            self.stats.retries += len(failed)
            pending = [chunk for chunk, _ in failed]

    def _submit(self, chunk: list[tuple[Event, dict[str, Any]]], attempt: int) -> Future[Any]:
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
