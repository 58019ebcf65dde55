"""Streams: ProxyStore's ``StreamProducer`` / ``StreamConsumer`` over Loom's brokers.

The metadata of each item goes through a broker, the bulk data into the data flow's store,
and the consumer receives proxies it can hand to tasks without reading them. Two brokers:

- Loom's Kafka event fabric (``events`` group: the embedded broker, or a real cluster), through
  :class:`FabricPublisher` / :class:`FabricSubscriber`, shims over the fabric's own producer
  and consumer, so access control and the embedded broker's offset-gap repair apply;
- Redis, through ProxyStore's list-based queue shims (its pub/sub shim drops messages sent
  before the subscriber joined).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from components.events.clients import FabricConsumer, FabricProducer


class FabricPublisher:
    """ProxyStore ``MessagePublisher`` over an event-fabric producer."""

    def __init__(self, producer: FabricProducer) -> None:
        self.producer = producer

    def send_message(self, topic: str, message: bytes) -> None:
        """Publish one message (the producer batches; :meth:`close` flushes)."""
        self.producer.produce(topic, message)
        self.producer.poll(0)

    def close(self) -> None:
        """Deliver what is queued."""
        self.producer.flush()


class FabricSubscriber:
    """ProxyStore ``MessageSubscriber`` over an event-fabric consumer.

    Args:
        consumer: A consumer subscribed to the stream's topic.
        timeout_s: Raise ``TimeoutError`` when no message came for this long (a stream whose
            producer died would otherwise block its consumer for ever).

    """

    def __init__(self, consumer: FabricConsumer, timeout_s: float = 60.0) -> None:
        self.consumer = consumer
        self.timeout_s = timeout_s
        self._ready: deque[bytes] = deque()

    def __iter__(self) -> FabricSubscriber:
        return self

    def __next__(self) -> bytes:
        return self.next_message()

    def next_message(self) -> bytes:
        """The next message, waiting for it."""
        deadline = time.monotonic() + self.timeout_s
        while not self._ready:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no stream message within {self.timeout_s:g} s")
            batch = self.consumer.poll(timeout_s=min(left, 1.0))
            self._ready.extend(bytes(v) for v in batch.values())
            if batch:
                self.consumer.commit(asynchronous=True)
        return self._ready.popleft()

    def close(self) -> None:
        """Leave the group."""
        self.consumer.close()


def stream_payload(index: int, size: int) -> bytes:
    """Item ``index`` of a stream: ``size`` bytes, different for every item."""
    import hashlib

    block = hashlib.blake2b(index.to_bytes(8, "little"), digest_size=64).digest()
    return (block * (size // 64 + 1))[:size]


def digest(data: Any) -> str:
    """What a stream task computes from an item: its hash."""
    import hashlib

    return hashlib.sha256(bytes(data)).hexdigest()
