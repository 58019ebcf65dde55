"""Producers and consumers of one principal: grant checks, encoding, at-least-once defaults.

Both wrap confluent-kafka clients and add as little as possible per event: the grant check
is a set lookup revalidated when the grant table changes, values are encoded only for
``json``, and consumed events wrap the client's messages instead of copying them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from itertools import count, repeat
from typing import Any, Literal, overload

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from components.events._access import AccessControl, full_name
from components.events.offsets import ReturnedOffsets
from components.events.protocol import Access, Event, EventsError, TopicAccessDenied

log = logging.getLogger(__name__)

ValueFormat = Literal["bytes", "json"]
Headers = Mapping[str, str | bytes] | Sequence[tuple[str, str | bytes]]
POLL_EVERY = 1000  # serve delivery reports this often while producing
_error, _value = Message.error, Message.value  # mapped over whole batches: no per-event lookups

# Headers a dead-lettered event carries, besides its own.
DLQ_ERROR, DLQ_TOPIC, DLQ_PARTITION, DLQ_OFFSET = (
    "loom.error",
    "loom.source_topic",
    "loom.source_partition",
    "loom.source_offset",
)


def _encode_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class _Grants:
    """Cached grant checks of one principal that notice grant changes."""

    def __init__(self, acl: AccessControl, principal: str, needed: Access) -> None:
        self.acl = acl
        self.principal = principal
        self.needed = needed
        self.allowed: set[str] = set()
        self.version = -1

    def check(self, topic: str) -> None:
        if self.version != self.acl.version:
            self.allowed.clear()
            self.version = self.acl.version
        self.acl.require(self.principal, topic, self.needed)
        self.allowed.add(topic)


# How long closing a client may take when the broker does not answer (a dead broker must not
# hold a run past its own timeout: librdkafka's flush, commit and leave wait for it).
CLOSE_TIMEOUT_S = 5.0


def call_bounded(fn: Callable[[], object], timeout_s: float, what: str) -> bool:
    """Run ``fn`` for at most ``timeout_s``; False (and a warning) if it did not return.

    The call goes on in a daemon thread that is left behind: what it waits for (a broker's
    answer) is not coming, and the run must end. An exception from ``fn`` is logged.
    """
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            fn()
            outcome.append(None)
        except BaseException as exc:  # reported below, from the caller's thread
            outcome.append(exc)

    thread = threading.Thread(target=run, name=f"loom-close-{what}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if not outcome:
        log.warning(
            "%s did not finish within %g s (is the broker down?): left behind", what, timeout_s
        )
        return False
    if outcome[0] is not None:
        log.warning("%s failed: %s", what, outcome[0])
        return False
    return True


class FabricProducer:
    """A principal's producer: idempotent, ``acks=all`` by default; checks write grants.

    Delivery failures (after librdkafka's own retries) are counted and raised by
    :meth:`flush`, so nothing is lost silently.
    """

    def __init__(
        self,
        acl: AccessControl,
        principal: str,
        settings: Mapping[str, Any],
        *,
        value_format: ValueFormat = "bytes",
        flush_timeout_s: float = 60.0,
    ) -> None:
        self.principal = principal
        self.value_format = value_format
        self.flush_timeout_s = flush_timeout_s
        self._grants = _Grants(acl, principal, Access.WRITE)
        self._names: dict[str, str] = {}
        # The hot path's one lookup: topic as given → full name, write grant checked at
        # ``_admitted_at`` (the ACL's version then; any grant change empties it).
        self._acl = acl
        self._admitted: dict[str, str] = {}
        self._admitted_at = -1
        # Delivery reports run in whichever thread serves them (poll, flush, a bounded close
        # left behind): counted without a lock, which a report must never wait for.
        self._failures = count(1)
        self.failed = 0
        self.last_error: str | None = None
        self._since_poll = 0
        self._json = value_format == "json"
        self._client = Producer({**settings, "on_delivery": self._failed})
        self._produce = self._client.produce  # bound once: produce is the hot path

    def _failed(self, err: KafkaError | None, message: Any) -> None:
        if err is not None:
            self.last_error = f"{err.str()} (topic {message.topic()})"
            self.failed = next(self._failures)  # atomic: two threads may serve reports

    def _admit(self, topic: str) -> str:
        """The full name of ``topic``, its write grant checked; remembered until grants change."""
        version = self._acl.version
        if version != self._admitted_at:  # a grant changed: check every topic again
            self._admitted = {}
            self._admitted_at = version
        name = self.resolve(topic)
        self._grants.check(name)
        self._admitted[topic] = name
        return name

    def resolve(self, topic: str) -> str:
        """The full name of ``topic`` (a short name is in the principal's namespace)."""
        name = self._names.get(topic)
        if name is None:
            name = self._names[topic] = full_name(self.principal, topic)
        return name

    def produce(
        self,
        topic: str,
        value: Any,
        *,
        key: str | bytes | None = None,
        headers: Headers | None = None,
        partition: int | None = None,
    ) -> None:
        """Queue one event; blocks (serving delivery reports) while the local queue is full.

        Raises:
            TopicAccessDenied: The principal holds no write grant on ``topic``.

        """
        name = self._admitted.get(topic)
        if name is None or self._acl.version != self._admitted_at:
            name = self._admit(topic)
        if self._json:
            value = _encode_json(value)
        try:
            if headers is None and partition is None:  # the common case: no keyword arguments
                self._produce(name, value, key)
            else:
                self._produce(name, value, key, **self._options(headers, partition))
        except BufferError:  # the local queue is full: let deliveries drain it
            self._produce_when_room(name, value, key, self._options(headers, partition))
        self._since_poll += 1
        if self._since_poll >= POLL_EVERY:
            self._since_poll = 0
            self._client.poll(0)

    def produce_many(
        self, topic: str, values: Iterable[Any], keys: Iterable[str | bytes | None] | None = None
    ) -> int:
        """Queue many events to one topic: the fast path for throughput work.

        One grant check for the call (a revoke takes effect on the next call), then a tight
        loop over the client; the events are the same as :meth:`produce` would send.

        Returns:
            How many events were queued.

        Raises:
            TopicAccessDenied: The principal holds no write grant on ``topic``.
            ValueError: ``keys`` and ``values`` differ in length (checked before sending
                when both have a length, else when the shorter one ends).

        """
        if isinstance(values, Sized) and isinstance(keys, Sized) and len(values) != len(keys):
            raise ValueError(f"{len(values)} values but {len(keys)} keys: give one key per value")
        name = self._names.get(topic) or self.resolve(topic)
        self._grants.check(name)
        if self._json:
            values = map(_encode_json, values)
        produce, poll = self._produce, self._client.poll
        sent = 0
        pairs = zip(values, repeat(None)) if keys is None else zip(values, keys, strict=True)
        for sent, (value, key) in enumerate(pairs, 1):
            try:
                produce(name, value, key)
            except BufferError:
                self._produce_when_room(name, value, key, {})
            if not sent % POLL_EVERY:
                poll(0)
        return sent

    @staticmethod
    def _options(headers: Headers | None, partition: int | None) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if headers is not None:
            options["headers"] = headers
        if partition is not None:
            options["partition"] = partition
        return options

    def _produce_when_room(
        self, name: str, value: Any, key: str | bytes | None, options: dict[str, Any]
    ) -> None:
        deadline = time.monotonic() + self.flush_timeout_s
        while True:
            self._client.poll(0.05)
            try:
                self._produce(name, value, key, **options)
                return
            except BufferError:
                if time.monotonic() > deadline:  # nothing is being acknowledged: no broker
                    raise EventsError(
                        f"the producer's queue stayed full for {self.flush_timeout_s:g} s: "
                        "is the broker reachable?"
                    ) from None

    def poll(self, timeout_s: float = 0.0) -> None:
        """Serve delivery reports."""
        self._client.poll(timeout_s)

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every queued event is acknowledged.

        Raises:
            EventsError: Events were still queued after the timeout (an unreachable
                broker), or some could not be delivered.

        """
        timeout = self.flush_timeout_s if timeout_s is None else timeout_s
        left = self._client.flush(timeout)
        if left:
            raise EventsError(
                f"{left} events were still unacknowledged after {timeout:g} s: is the "
                "broker reachable?"
            )
        if self.failed:
            raise EventsError(f"{self.failed} events could not be delivered: {self.last_error}")

    def close(self, timeout_s: float | None = None) -> None:
        """Flush what is queued, waiting at most ``timeout_s`` (default: the flush timeout).

        Raises:
            EventsError: Events were left unacknowledged or undelivered.

        """
        self.flush(timeout_s)

    def __enter__(self) -> FabricProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()


class EventBatch(Sequence[Event]):
    """Events returned by one poll; :class:`Event` objects are made on access."""

    __slots__ = ("_messages", "_values")

    def __init__(self, messages: list[Any], values: list[Any]) -> None:
        self._messages = messages
        self._values = values

    def __len__(self) -> int:
        return len(self._messages)

    @overload
    def __getitem__(self, index: int) -> Event: ...

    @overload
    def __getitem__(self, index: slice) -> list[Event]: ...

    def __getitem__(self, index: int | slice) -> Event | list[Event]:
        if isinstance(index, slice):
            return [
                Event(m, v) for m, v in zip(self._messages[index], self._values[index], strict=True)
            ]
        return Event(self._messages[index], self._values[index])

    def __iter__(self) -> Iterator[Event]:
        return map(Event, self._messages, self._values)

    def values(self) -> list[Any]:
        """The decoded values, in order (the fast path for throughput work)."""
        return self._values


DeadLetterSink = Callable[[Any, str], None]  # (message, reason) → None


class FabricConsumer:
    """A principal's consumer in a group: checks read grants; commits only when asked.

    Poll, process, then :meth:`commit`: what was committed was processed, so delivery is
    at-least-once. Offsets of returned events are stored as they are returned and committed
    on :meth:`commit`, when partitions are revoked, and on :meth:`close`. An undecodable
    event goes to ``dead_letter`` (when given) and never stops the consumer. With
    ``gap_wait_s`` > 0 a partition whose offsets jump is read again from the jump
    (:mod:`components.events.offsets`).
    """

    def __init__(
        self,
        acl: AccessControl,
        principal: str,
        topics: Sequence[str],
        settings: Mapping[str, Any],
        *,
        value_format: ValueFormat = "bytes",
        dead_letter: DeadLetterSink | None = None,
        gap_wait_s: float = 0.0,
    ) -> None:
        self.principal = principal
        self.value_format = value_format
        self.topics = [full_name(principal, t) for t in topics]
        self._grants = _Grants(acl, principal, Access.READ)
        for topic in self.topics:
            self._grants.check(topic)
        self._dead_letter = dead_letter
        self.malformed = 0
        self.assigned: set[tuple[str, int]] = set()
        self.rebalances = 0
        self._closed = False
        self._client = Consumer(dict(settings))
        self._offsets = ReturnedOffsets(
            self._client,
            gap_wait_s,
            single_topic=len(self.topics) == 1,
            from_log_start=settings.get("auto.offset.reset", "latest") in ("earliest", "smallest"),
        )
        self._client.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke)

    def _on_assign(self, client: Consumer, partitions: list[TopicPartition]) -> None:
        self.rebalances += 1
        self.assigned |= {(p.topic, p.partition) for p in partitions}
        self._offsets.assigned(partitions)

    def _on_revoke(self, client: Consumer, partitions: list[TopicPartition]) -> None:
        # Called inside poll, after the previous batch was processed: keep its progress.
        self._commit_quietly()
        self.assigned -= {(p.topic, p.partition) for p in partitions}
        self._offsets.revoked(partitions)

    @property
    def rereads(self) -> int:
        """Times a partition whose offsets jumped was read again (see ``offsets.py``)."""
        return self._offsets.rereads

    def _recheck_grants(self) -> None:
        try:
            for topic in self.topics:
                self._grants.check(topic)
        except TopicAccessDenied:
            self._client.unsubscribe()
            raise

    def poll(self, max_events: int = 500, timeout_s: float = 1.0) -> EventBatch:
        """Up to ``max_events`` events, waiting at most ``timeout_s`` for the first.

        Raises:
            TopicAccessDenied: The read grant was revoked (the consumer unsubscribes).

        """
        if self._grants.version != self._grants.acl.version:
            self._recheck_grants()
        # consume(n, t) waits for n messages or for t, whichever comes first: with fewer than
        # n waiting it would hold what came for the whole timeout. Take what is there; if
        # nothing is, wait for the first message and take what came with it.
        messages = self._client.consume(max_events, 0)
        if not messages:
            first = self._client.poll(timeout_s)
            if first is None:
                return EventBatch([], [])
            messages = (
                [first, *self._client.consume(max_events - 1, 0)] if max_events > 1 else [first]
            )
        if list(map(_error, messages)).count(None) != len(messages):
            messages = self._drop_errors(messages)
            if not messages:
                return EventBatch([], [])
        messages = self._offsets.returned(messages)
        if self.value_format == "bytes":
            return EventBatch(messages, list(map(_value, messages)))
        good: list[Any] = []
        values: list[Any] = []
        for message in messages:
            raw = message.value()
            try:
                values.append(json.loads(raw if raw is not None else b""))
                good.append(message)
            except ValueError as exc:
                self._reject(message, f"value is not JSON: {exc}")
        return EventBatch(good, values)

    def drain(self, timeout_s: float = 10.0) -> int:
        """Read and drop every event up to each assigned partition's end as of now; commit.

        Returns:
            How many events were dropped.

        """
        ends: dict[tuple[str, int], tuple[int, int]] = {}
        for topic, partition in self.assigned:
            ends[(topic, partition)] = self._client.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout_s
            )
        dropped, deadline = 0, time.monotonic() + timeout_s
        while ends and time.monotonic() < deadline:
            places = self._client.position([TopicPartition(t, p) for t, p in ends])
            behind = [
                tp
                for tp in places
                if (high := ends[(tp.topic, tp.partition)][1]) > ends[(tp.topic, tp.partition)][0]
                and (tp.offset < 0 or tp.offset < high)
            ]
            if not behind:
                break
            dropped += len(self.poll(500, 0.2))
        self.commit()
        return dropped

    def _drop_errors(self, messages: list[Any]) -> list[Any]:
        kept = []
        for message in messages:
            err = message.error()
            if err is None:
                kept.append(message)
            elif err.code() != KafkaError._PARTITION_EOF:
                if err.fatal():
                    raise EventsError(f"consumer failed: {err.str()}")
                log.warning("consumer: %s", err.str())
        return kept

    def _reject(self, message: Any, reason: str) -> None:
        self.malformed += 1
        if self._dead_letter is not None:
            self._dead_letter(message, reason)
        else:
            log.warning(
                "skipped malformed event %s[%d]@%d: %s",
                message.topic(),
                message.partition(),
                message.offset(),
                reason,
            )

    def commit(self, *, asynchronous: bool = False) -> None:
        """Commit the offsets of every event returned so far (call after processing them).

        Args:
            asynchronous: Do not wait for the broker's answer (faster; a failed commit
                means those events are read again, which at-least-once allows).

        """
        try:
            if asynchronous:
                self._client.commit(asynchronous=True)
            else:
                self._client.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                raise EventsError(f"commit failed: {exc.args[0].str()}") from None

    def committed(self, timeout_s: float = 10.0) -> dict[tuple[str, int], int]:
        """The group's committed offset of every assigned partition (-1001: none yet)."""
        partitions = [TopicPartition(t, p) for t, p in sorted(self.assigned)]
        if not partitions:
            return {}
        return {
            (tp.topic, tp.partition): tp.offset
            for tp in self._client.committed(partitions, timeout=timeout_s)
        }

    def _commit_quietly(self) -> None:
        try:
            self.commit()
        except EventsError as exc:
            log.warning("%s", exc)

    def wait_assigned(self, partitions: int, timeout_s: float = 30.0) -> EventBatch:
        """Poll until ``partitions`` are assigned to this consumer, for measurements.

        Returns:
            Whatever events arrived meanwhile (none, when producers start afterwards).

        """
        deadline = time.monotonic() + timeout_s
        early: list[Event] = []
        while len(self.assigned) < partitions:
            if time.monotonic() > deadline:
                raise EventsError(
                    f"the consumer group did not assign {partitions} partitions within "
                    f"{timeout_s:g} s (got {len(self.assigned)})"
                )
            early += self.poll(500, 0.05)
        return EventBatch([e.message for e in early], [e.value for e in early])

    def close(self, timeout_s: float | None = None) -> None:
        """Commit what was returned and leave the group.

        Args:
            timeout_s: Give up after this long (a dead broker answers neither the commit
                nor the leave); None waits as long as librdkafka does.

        """
        if self._closed:
            return
        self._closed = True
        if timeout_s is None:
            self._commit_quietly()
            self._client.close()
            return

        def leave() -> None:
            self._commit_quietly()
            self._client.close()

        call_bounded(leave, timeout_s, "closing a consumer")

    def __enter__(self) -> FabricConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def dead_letter_sink(producer: FabricProducer, topic: str) -> DeadLetterSink:
    """A sink that copies a rejected message to ``topic`` with the reason in its headers."""

    def send(message: Any, reason: str) -> None:
        headers = list(message.headers() or ())
        headers += [
            (DLQ_ERROR, reason[:1000].encode()),
            (DLQ_TOPIC, str(message.topic()).encode()),
            (DLQ_PARTITION, str(message.partition()).encode()),
            (DLQ_OFFSET, str(message.offset()).encode()),
        ]
        raw = message.value()
        producer.produce(topic, raw, key=message.key(), headers=headers)

    return send
