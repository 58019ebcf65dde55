"""Producer and consumer loops of the event scenarios, with per-event ids and send times.

A bytes event starts with its id and send time (``<QQ``, 16 bytes) and is padded to the
configured size; a JSON event carries them as ``id`` and ``sent_ns``. Consumers read them
back to count losses and duplicates and to measure end-to-end latency.

Before its clock starts, each producer sends one warm-up event (id with ``WARMUP`` set) and
waits for it to be acknowledged: an idempotent librdkafka producer first obtains a producer
id from the broker, which takes up to 0.5 s, and that start-up is not throughput. Consumers
skip warm-up events.
"""

from __future__ import annotations

import json
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from components.events.clients import FabricConsumer, FabricProducer
from components.events.topology import ProducerSpec

HEADER = struct.Struct("<QQ")
PRODUCER_SHIFT = 40  # id = producer index << 40 | sequence number
WARMUP = 1 << 63


def event_keys(spec: ProducerSpec, rng: np.random.Generator) -> list[bytes | None]:
    """The key of every event one producer sends."""
    if spec.keys == "none":
        return [None] * spec.events
    if spec.keys == "uniform":
        draws = rng.integers(0, spec.key_count, spec.events)
    else:  # zipf: a few hot keys, as real event streams have
        draws = (rng.zipf(1.2, spec.events) - 1) % spec.key_count
    names = [f"k{i}".encode() for i in range(spec.key_count)]
    return [names[i] for i in draws]


def encode(event_id: int, sent_ns: int, size: int, value_format: str, pad: bytes) -> Any:
    """One event value of ``size`` bytes (JSON: about that size)."""
    if value_format == "bytes":
        return HEADER.pack(event_id, sent_ns) + pad
    return {"id": event_id, "sent_ns": sent_ns, "pad": pad.decode()}


def decode(value: Any) -> tuple[int, int]:
    """``(id, sent_ns)`` of an event value."""
    if isinstance(value, bytes | bytearray):
        event_id, sent_ns = HEADER.unpack_from(value)
        return int(event_id), int(sent_ns)
    return int(value["id"]), int(value["sent_ns"])


@dataclass
class ProducerResult:
    """What one producer did."""

    sent: int = 0
    began: float = 0.0
    ended: float = 0.0


def run_producer(
    producer: FabricProducer,
    topic: str,
    spec: ProducerSpec,
    index: int,
    keys: list[bytes | None],
    *,
    progress: Callable[[int], None] | None = None,
    start: threading.Barrier | None = None,
) -> ProducerResult:
    """Warm up, then send ``spec.events`` events (paced when ``spec.rate_per_s`` is set), flush.

    ``progress`` is told the events sent so far (every 256: the faults group's ``at_fraction``
    acts on it). ``start``, when given, lines the producers up after
    their warm-up so that they start together.
    """
    header = HEADER.size if spec.value_format == "bytes" else 48
    pad = b"x" * max(0, spec.event_size - header)
    base = index << PRODUCER_SHIFT
    fmt = spec.value_format
    size = spec.event_size
    interval = 1.0 / spec.rate_per_s if spec.rate_per_s else 0.0
    producer.produce(topic, encode(WARMUP | base, time.time_ns(), size, fmt, pad))
    producer.flush()
    if start is not None:
        start.wait()
    result = ProducerResult(began=time.perf_counter())
    produce = producer.produce
    now_ns = time.time_ns
    for seq in range(spec.events):
        if interval:
            delay = result.began + seq * interval - time.perf_counter()
            if delay > 0.001:
                time.sleep(delay)
        produce(topic, encode(base | seq, now_ns(), size, fmt, pad), key=keys[seq])
        if progress is not None and seq % 256 == 0:
            progress(seq)
    producer.flush()
    result.sent = spec.events
    result.ended = time.perf_counter()
    return result


@dataclass
class ConsumerTally:
    """What the consumers of a run saw, shared between their threads."""

    expected: int
    seen: set[int] = field(default_factory=set)
    received: int = 0
    latencies_ns: list[int] = field(default_factory=list)
    first: float = 0.0
    last: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)

    def add(self, values: list[Any]) -> None:
        """Count one batch."""
        arrived_ns = time.time_ns()
        decoded = [d for d in map(decode, values) if not d[0] & WARMUP]
        if not decoded:
            return
        now = time.perf_counter()
        with self.lock:
            if not self.first:
                self.first = now
            self.last = now
            self.received += len(decoded)
            self.seen.update(i for i, _ in decoded)
            self.latencies_ns += [arrived_ns - sent for _, sent in decoded]
            if len(self.seen) >= self.expected:
                self.done.set()


def run_consumer(
    consumer: FabricConsumer, tally: ConsumerTally, stop: threading.Event, max_events: int
) -> None:
    """Poll and count until every expected event was seen or ``stop`` is set."""
    while not (tally.done.is_set() or stop.is_set()):
        batch = consumer.poll(max_events, 0.2)
        if batch:
            tally.add(batch.values())
            consumer.commit(asynchronous=True)


def percentile_ms(latencies_ns: list[int], q: float) -> float:
    """The ``q``-th percentile of latencies, in milliseconds (NaN when there are none)."""
    if not latencies_ns:
        return float("nan")
    return float(np.percentile(np.asarray(latencies_ns, dtype=np.int64), q)) / 1e6


def json_size(value: dict[str, Any]) -> int:
    """Bytes of a JSON event as produced."""
    return len(json.dumps(value, separators=(",", ":")))
