"""Wake channels of distributed futures: how a producer tells waiting consumers "it is there".

A consumer *watches* a key before it first looks in the store, and then sleeps on the watch;
a producer writes the value and *notifies* the key. Whatever the order of the two, the
consumer cannot miss the value: a write before the look is seen by the look, a write after it
is announced to a watch that already exists.

- :class:`RedisWake`: Redis pub/sub, one channel per key.
- :class:`EventsWake`: a topic on Loom's Kafka event fabric; the key is the message value.
  Each process has one watcher per topic (a consumer assigned at the topic's end offset, read
  by one thread), so a thousand waiting tasks are one consumer, not a thousand. With the
  embedded broker, offset jumps are read again (``components/events/offsets.py``), and a
  watch also looks again every ``recheck_s``: a missed wake costs that long, and is counted.

Both are small frozen dataclasses, picklable into any task.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from components.events.fabric import Session

log = logging.getLogger(__name__)

Sleep = Callable[[float], bool]
"""Sleep at most that many seconds; True when woken by a notification."""


class Wake(Protocol):
    """A way to wake the consumers of a key."""

    def notify(self, key: Any) -> None:
        """Tell the watchers of ``key`` it was written."""

    def watching(self, key: Any) -> Any:
        """A context manager giving a :data:`Sleep` that ends when ``key`` is notified."""


def channel(key: Any) -> str:
    """The name a key is announced under (its ``str``: store keys are named tuples)."""
    return f"loom-future:{key}"


@dataclass(frozen=True)
class RedisWake:
    """Wake by Redis pub/sub on the data flow's own Redis server."""

    host: str
    port: int

    def notify(self, key: Any) -> None:
        """Publish on the key's channel."""
        import redis

        client = redis.Redis(host=self.host, port=self.port)
        try:
            client.publish(channel(key), b"1")
        finally:
            client.close()

    @contextmanager
    def watching(self, key: Any) -> Iterator[Sleep]:
        """Subscribe to the key's channel for the duration."""
        import redis

        client = redis.Redis(host=self.host, port=self.port)
        # Some redis releases type pubsub(), some do not: the ignore must hold for both.
        pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call,unused-ignore]

        def sleep(seconds: float) -> bool:
            # get_message also returns None on the subscription's own reply: wait on past it.
            deadline = time.monotonic() + seconds
            while (left := deadline - time.monotonic()) > 0:
                if pubsub.get_message(timeout=left) is not None:
                    return True
            return False

        try:
            pubsub.subscribe(channel(key))
            yield sleep
        finally:
            pubsub.close()
            client.close()


@dataclass(frozen=True)
class EventsWake:
    """Wake through a topic of the event fabric.

    Attributes:
        bootstrap: The cluster's ``host:port`` list.
        topic: The topic's full name (created by :func:`events_wake`).
        settings: Extra librdkafka settings of the principal (credentials), as pairs.
        consumer: The fabric's consumer settings (its fetch wait bounds the wake latency).
        gap_wait_s: How long the watcher re-reads a jump in offsets (embedded broker).
        recheck_s: A watch looks in the store again after this long without a wake.

    """

    bootstrap: str
    topic: str
    settings: tuple[tuple[str, Any], ...] = ()
    consumer: tuple[tuple[str, Any], ...] = ()
    gap_wait_s: float = 0.0
    recheck_s: float = 5.0

    def client_settings(self) -> dict[str, Any]:
        """The librdkafka settings of this channel's clients."""
        return {
            "bootstrap.servers": self.bootstrap,
            "logger": logging.getLogger("loom.librdkafka"),
            **dict(self.settings),
        }

    def notify(self, key: Any) -> None:
        """Produce the key's name to the topic and wait for the broker to have it."""
        producer = _producer(self)
        producer.produce(self.topic, channel(key).encode())
        if producer.flush(30) != 0:
            raise RuntimeError(f"the wake of {key} was not delivered to {self.topic}")

    @contextmanager
    def watching(self, key: Any) -> Iterator[Sleep]:
        """Register with this process's watcher of the topic for the duration."""
        watcher, event = _want(self, channel(key))

        def sleep(seconds: float) -> bool:
            woken = event.wait(min(seconds, self.recheck_s))
            event.clear()  # the next sleep waits for the next notice
            return woken

        try:
            yield sleep
        finally:
            watcher.unwant(channel(key), event)


def events_wake(session: Session, name: str) -> EventsWake:
    """A wake channel on a new topic ``name`` in ``session``'s namespace.

    The topic lives as long as the fabric. On a Kafka cluster it is deleted when the fabric
    closes; on the embedded broker it goes with the broker, because librdkafka 2.x crashes
    (SIGSEGV, reproduced here) in any process whose consumer reads a topic tansu deletes, and
    worker processes may still hold a watcher of it.
    """
    fabric = session.fabric
    topic = session.create_topic(name, partitions=1)
    if fabric.broker is None:
        fabric.on_close(lambda: session.delete_topic(name))
    extra = {
        k: v
        for k, v in fabric.client_settings(session.principal).items()
        if k not in ("logger", "bootstrap.servers")
    }
    return EventsWake(
        fabric.bootstrap_servers,
        topic,
        tuple(sorted(extra.items())),
        tuple(sorted(fabric.config.consumer.librdkafka().items())),
        fabric.gap_wait_s(),
    )


# -- per-process clients ---------------------------------------------------------------------

_lock = threading.Lock()  # guards both registries and every watcher's wanted keys
_producers: dict[EventsWake, Any] = {}
_watchers: dict[EventsWake, _Watcher] = {}


def _producer(wake: EventsWake) -> Any:
    from confluent_kafka import Producer

    with _lock:
        if wake not in _producers:
            _producers[wake] = Producer({**wake.client_settings(), "linger.ms": 0})
        return _producers[wake]


def _want(wake: EventsWake, name: str) -> tuple[_Watcher, threading.Event]:
    """The process's watcher of ``wake`` (started if need be) and a new watch on ``name``."""
    with _lock:
        watcher = _watchers.get(wake)
        if watcher is None:
            watcher = _watchers[wake] = _Watcher(wake)
        return watcher, watcher.want(name)


@atexit.register
def close_all() -> None:
    """Stop this process's watchers and flush its producers (at exit, and in tests)."""
    with _lock:
        watchers, producers = list(_watchers.values()), list(_producers.values())
        _watchers.clear()
        _producers.clear()
    for watcher in watchers:
        watcher.close()
    for producer in producers:
        producer.flush(5)


class _Watcher:
    """One consumer of a wake topic in this process, from the end it had when it started.

    It stops itself after ``idle_s`` without watches, so that worker processes do not keep
    consumers of finished runs (librdkafka crashes when tansu deletes a topic it reads).
    """

    idle_s = 2.0

    def __init__(self, wake: EventsWake) -> None:
        from confluent_kafka import Consumer, TopicPartition

        from components.events.offsets import ReturnedOffsets

        self.wake = wake
        self._wanted: dict[str, set[threading.Event]] = {}
        self._stop = threading.Event()
        self._client = Consumer(
            {
                **wake.client_settings(),
                **dict(wake.consumer),
                "group.id": f"loom-wake-{uuid.uuid4().hex}",  # a group of its own: no rebalances
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
            }
        )
        metadata = self._client.list_topics(wake.topic, timeout=30)
        partitions = sorted(metadata.topics[wake.topic].partitions)
        starts = []
        for p in partitions:
            # The end now, fixed before any watch's first look: a write after that look lands
            # at or past it. (Assigning at OFFSET_END would resolve it later, racing the look.)
            _, high = self._client.get_watermark_offsets(
                TopicPartition(wake.topic, p), timeout=30, cached=False
            )
            starts.append(TopicPartition(wake.topic, p, high))
        self._offsets = ReturnedOffsets(
            self._client, wake.gap_wait_s, single_topic=True, from_log_start=False
        )
        self._offsets.next = {(tp.topic, tp.partition): tp.offset for tp in starts}
        self._client.assign(starts)
        self._thread = threading.Thread(target=self._run, name="loom-wake-watcher", daemon=True)
        self._thread.start()

    def want(self, name: str) -> threading.Event:
        """An event set when ``name`` is announced from now on (call under ``_lock``)."""
        event = threading.Event()
        self._wanted.setdefault(name, set()).add(event)
        return event

    def unwant(self, name: str, event: threading.Event) -> None:
        """Stop watching."""
        with _lock:
            events = self._wanted.get(name, set())
            events.discard(event)
            if not events:
                self._wanted.pop(name, None)

    def _run(self) -> None:
        idle_since = time.monotonic()
        while not self._stop.is_set():
            # poll returns on the first message; consume(n, t) would wait for n or for t.
            first = self._client.poll(0.2)
            batch = [first, *self._client.consume(500, 0)] if first is not None else []
            messages = [m for m in batch if m.error() is None]
            if messages:
                messages = self._offsets.returned(messages)
            with _lock:
                for message in messages:
                    for event in self._wanted.get(bytes(message.value() or b"").decode(), ()):
                        event.set()
                if self._wanted:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > self.idle_s:
                    if _watchers.get(self.wake) is self:
                        del _watchers[self.wake]
                    break
        self._client.close()

    def close(self) -> None:
        """Stop the thread; it closes the consumer."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(5)
