"""Event fabric figures (issue 5): fabric clients vs bare confluent-kafka on the same broker.

Run:  python benchmarks/events.py [--quick]
Prints the tables and writes results/benchmarks/events.{md,json}.

1. produce events/s, 100 B / 1 KiB / 10 KiB, one producer: fabric (``produce`` per event and
   ``produce_many``) vs bare (ratio; goal ≥ 0.95, issue 40)
2. consume events/s of the same backlog, one consumer, group join excluded: fabric vs bare
3. end-to-end latency p50/p99 at 2,000 events/s (1 KiB): fabric vs bare
5. 1, 2 and 4 bare producers (100 B) as threads of one process vs as processes
Both sides use the same librdkafka settings (idempotent, acks=all, linger 5 ms) on one
embedded tansu broker, pinned to the first core and the clients to the others (tables 1-3),
alternating; a figure is the median of ``--rounds`` (single runs vary
by ±15 %). Producers are timed after a warm-up event: an idempotent producer first waits up
to 0.5 s for its producer id.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import struct
import threading
import time
import uuid
from itertools import cycle, islice, repeat
from typing import Any

import numpy as np
from confluent_kafka import Consumer, Producer
from tables import publish  # benchmarks/ is the script's folder

from components.events.embedded import EmbeddedEventsConfig
from components.events.fabric import KafkaEventFabric

SIZES = (100, 1024, 10240)
GROUPS = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 100}


def _events(size: int, quick: bool) -> int:
    full = {100: 200_000, 1024: 100_000, 10240: 20_000}[size]
    return full // 10 if quick else full


def _bare_settings(fabric: KafkaEventFabric) -> dict[str, Any]:
    settings = fabric.client_settings()
    settings.pop("logger")
    return settings


def produce_bare(
    fabric: KafkaEventFabric, topic: str, n: int, payload: bytes, keys: list[bytes]
) -> float:
    client = Producer({**_bare_settings(fabric), **fabric.config.producer.librdkafka()})
    client.produce(topic, b"warm-up")  # untimed: an idempotent producer first gets its id
    client.flush()
    began = time.perf_counter()
    for i in range(n):
        while True:
            try:
                client.produce(topic, payload, keys[i & 63])
                break
            except BufferError:
                client.poll(0.05)
        if i % 1000 == 0:
            client.poll(0)
    assert client.flush(60) == 0
    return n / (time.perf_counter() - began)


def _timed_producer(
    settings: dict[str, Any], topic: str, n: int, start: Any
) -> tuple[float, float]:
    """Warm up (producer id), wait for the others, send ``n`` 100 B events; (began, ended)."""
    client = Producer(settings)
    client.produce(topic, b"warm-up")
    client.flush()
    start.wait()
    began = time.perf_counter()  # CLOCK_MONOTONIC: comparable between processes
    for i in range(n):
        while True:
            try:
                client.produce(topic, b"x" * 100, f"k{i & 63}".encode())
                break
            except BufferError:
                client.poll(0.05)
        if i % 1000 == 0:
            client.poll(0)
    client.flush()
    return began, time.perf_counter()


def _process_producer(settings: dict[str, Any], topic: str, n: int, start: Any, out: Any) -> None:
    out.put(_timed_producer(settings, topic, n, start))


def producer_scaling(fabric: KafkaEventFabric, n: int) -> list[dict[str, object]]:
    """Events/s of 1, 2 and 4 bare producers as threads and as processes (same broker)."""
    settings = {**_bare_settings(fabric), **fabric.config.producer.librdkafka()}
    session = fabric.session("loom")
    rows: list[dict[str, object]] = []
    for count in (1, 2, 4):
        row: dict[str, object] = {"producers": count, "events each": n}
        for mode in ("threads", "processes"):
            topic = session.create_topic(f"s{count}{mode[0]}-{uuid.uuid4().hex[:6]}", partitions=4)
            spans: list[tuple[float, float]] = []
            if mode == "threads":
                barrier: Any = threading.Barrier(count)
                workers = [
                    threading.Thread(
                        target=lambda t, b, got: got.append(_timed_producer(settings, t, n, b)),
                        args=(topic, barrier, spans),
                    )
                    for _ in range(count)
                ]
                for w in workers:
                    w.start()
                for w in workers:
                    w.join()
            else:
                spawn = mp.get_context("spawn")  # no fork of a process running librdkafka threads
                barrier, out = spawn.Barrier(count), spawn.Queue()
                procs = [
                    spawn.Process(target=_process_producer, args=(settings, topic, n, barrier, out))
                    for _ in range(count)
                ]
                for proc in procs:
                    proc.start()
                spans = [out.get(timeout=300) for _ in procs]
                for proc in procs:
                    proc.join()
            span = max(e for _, e in spans) - min(b for b, _ in spans)
            row[f"{mode} events/s"] = f"{count * n / span:,.0f}"
            session.delete_topic(topic)
        rows.append(row)
    return rows


def produce_fabric(
    fabric: KafkaEventFabric, topic: str, n: int, payload: bytes, keys: list[bytes]
) -> float:
    producer = fabric.session("loom").producer()
    producer.produce(topic, b"warm-up")  # untimed, as for the bare producer
    producer.flush()
    began = time.perf_counter()
    for i in range(n):
        producer.produce(topic, payload, key=keys[i & 63])
    producer.flush()
    return n / (time.perf_counter() - began)


def produce_fabric_many(
    fabric: KafkaEventFabric, topic: str, n: int, payload: bytes, keys: list[bytes]
) -> float:
    """The fabric's fast path: one ``produce_many`` call for the whole stream."""
    producer = fabric.session("loom").producer()
    producer.produce(topic, b"warm-up")
    producer.flush()
    began = time.perf_counter()
    producer.produce_many(topic, repeat(payload, n), islice(cycle(keys), n))
    producer.flush()
    return n / (time.perf_counter() - began)


def consume_bare(fabric: KafkaEventFabric, topic: str, n: int) -> float:
    client = Consumer(
        {
            **_bare_settings(fabric),
            **fabric.config.consumer.librdkafka(),
            "enable.auto.offset.store": True,  # plain confluent-kafka: stored as returned
            "group.id": f"bare-{uuid.uuid4().hex[:6]}",
        }
    )
    client.subscribe([topic])
    got, began = 0, 0.0
    while got < n:
        messages = client.consume(1000, 1.0)
        if messages and not began:
            began = time.perf_counter()
        for m in messages:
            if m.error() is None:
                m.value()
                got += 1
        client.commit(asynchronous=True)
    rate = n / (time.perf_counter() - began)
    client.close()
    return rate


def consume_fabric(fabric: KafkaEventFabric, topic: str, n: int) -> float:
    consumer = fabric.session("loom").consumer([topic], group=f"fab-{uuid.uuid4().hex[:6]}")
    got, began = 0, 0.0
    while got < n:
        batch = consumer.poll(1000, 1.0)
        if batch and not began:
            began = time.perf_counter()
        got += len(batch.values())
        consumer.commit(asynchronous=True)
    rate = n / (time.perf_counter() - began)
    consumer.close()
    return rate


def latency(
    fabric: KafkaEventFabric, topic: str, n: int, rate: float, bare: bool
) -> tuple[float, float]:
    """p50 and p99 in ms of produce → consume at ``rate`` events/s, 1 KiB events."""
    lat: list[int] = []
    assigned = threading.Event()
    done = threading.Event()
    if bare:
        consumer: Any = Consumer(
            {
                **_bare_settings(fabric),
                **fabric.config.consumer.librdkafka(),
                "enable.auto.offset.store": True,
                "group.id": f"lb-{topic}",
            }
        )
        consumer.subscribe([topic], on_assign=lambda c, p: assigned.set())
        poll = lambda: [m.value() for m in consumer.consume(1000, 0.1) if m.error() is None]  # noqa: E731
        producer: Any = Producer({**_bare_settings(fabric), **fabric.config.producer.librdkafka()})
        send = lambda v: producer.produce(topic, v)  # noqa: E731
    else:
        session = fabric.session("loom")
        consumer = session.consumer([topic], group="lat-fabric")
        poll = lambda: consumer.poll(1000, 0.1).values()  # noqa: E731
        producer = session.producer()
        send = lambda v: producer.produce(topic, v)  # noqa: E731
    while not (assigned.is_set() or (not bare and consumer.assigned)):
        poll()

    def drain() -> None:
        while len(lat) < n:
            values = poll()
            now = time.time_ns()
            lat.extend(now - struct.unpack_from("<Q", v)[0] for v in values)
        done.set()

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    pad = b"x" * 1016
    began = time.perf_counter()
    for i in range(n):
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        send(struct.pack("<Q", time.time_ns()) + pad)
        if bare and i % 100 == 0:
            producer.poll(0)
    producer.flush()
    done.wait(60)
    consumer.close()
    ms = np.asarray(lat, dtype=np.float64) / 1e6
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the events")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (median kept)")
    args = parser.parse_args()
    config = EmbeddedEventsConfig(principals=["loom"], consumer=GROUPS)
    produce_rows, consume_rows = [], []
    with config.build() as fabric:
        pinned = _pin(fabric)
        session = fabric.session("loom")
        keys = [f"k{i}".encode() for i in range(64)]
        for size in SIZES:
            n = _events(size, args.quick)
            payload = b"x" * size
            runs: dict[str, list[float]] = {"bare": [], "fabric": [], "many": []}
            backlog = ""
            writers = [
                ("bare", produce_bare),
                ("fabric", produce_fabric),
                ("many", produce_fabric_many),
            ]
            for round_ in range(args.rounds):
                for side, run in writers if round_ % 2 == 0 else writers[::-1]:
                    topic = session.create_topic(f"p{size}-{uuid.uuid4().hex[:6]}", partitions=4)
                    runs[side].append(run(fabric, topic, n, payload, keys))
                    if backlog:
                        session.delete_topic(topic)  # keep the broker's memory to one backlog
                    else:
                        backlog = topic
            median = {side: statistics.median(rates) for side, rates in runs.items()}
            produce_rows.append(
                _row(size, n, median)
                | {
                    "fabric produce_many/s": f"{median['many']:,.0f}",
                    "ratio (many)": f"{median['many'] / median['bare']:.2f}",
                }
            )
            runs = {"bare": [], "fabric": []}
            consume_fabric(fabric, backlog, n)  # untimed: tansu's first read of a topic is slow
            sides = [("bare", consume_bare), ("fabric", consume_fabric)]
            for round_ in range(args.rounds):
                for side, read in sides if round_ % 2 == 0 else sides[::-1]:
                    runs[side].append(read(fabric, backlog, n))
            median = {side: statistics.median(rates) for side, rates in runs.items()}
            consume_rows.append(_row(size, n, median))
            session.delete_topic(backlog)
        n = 2000 if args.quick else 6000
        lat_rows = []
        for side in ("bare", "fabric"):
            topic = session.create_topic(f"lat-{side}", partitions=4)
            p50, p99 = latency(fabric, topic, n, 2000.0, side == "bare")
            lat_rows.append(
                {
                    "client": side,
                    "events": n,
                    "rate/s": 2000,
                    "p50 ms": f"{p50:.1f}",
                    "p99 ms": f"{p99:.1f}",
                }
            )
        _unpin(fabric, pinned)  # producers as processes need every core
        scaling = producer_scaling(fabric, 10_000 if args.quick else 100_000)
    octopus = [
        {
            "figure": "produced events/s",
            "Octopus (paper, many clients on AWS MSK)": "4.2 M",
            "Loom, one client on 2 cores (100 B)": produce_rows[0]["fabric produce_many/s"],
        },
        {
            "figure": "consumed events/s",
            "Octopus (paper, many clients on AWS MSK)": "9.6 M",
            "Loom, one client on 2 cores (100 B)": consume_rows[0]["fabric/s"],
        },
    ]
    tables = {
        "1. produce events/s, one producer: produce() per event and produce_many() "
        "(ratio = fabric / bare; goal ≥ 0.95)": produce_rows,
        "2. consume events/s of a backlog, one consumer (ratio as above)": consume_rows,
        "3. end-to-end latency, 1 KiB events at 2,000/s": lat_rows,
        "4. beside Octopus's reported figures": octopus,
        "5. bare producers (100 B): threads of one process vs processes": scaling,
    }
    publish("events", tables)


def _pin(fabric: KafkaEventFabric) -> set[int]:
    """Broker on the first core, this process on the others: steadier figures on 2 cores."""
    cores = os.sched_getaffinity(0)
    broker = fabric.broker
    if len(cores) < 2 or broker is None or broker.pid is None:
        return cores
    first = min(cores)
    os.sched_setaffinity(broker.pid, {first})
    os.sched_setaffinity(0, cores - {first})
    print(f"pinned: broker on core {first}, clients on {sorted(cores - {first})}")
    return cores


def _unpin(fabric: KafkaEventFabric, cores: set[int]) -> None:
    os.sched_setaffinity(0, cores)
    if fabric.broker is not None and fabric.broker.pid is not None:
        os.sched_setaffinity(fabric.broker.pid, cores)


def _row(size: int, n: int, median: dict[str, float]) -> dict[str, object]:
    return {
        "event size": size,
        "events": n,
        "bare/s": f"{median['bare']:,.0f}",
        "fabric/s": f"{median['fabric']:,.0f}",
        "ratio": f"{median['fabric'] / median['bare']:.2f}",
        "fabric MB/s": f"{median['fabric'] * size / 1e6:.1f}",
    }


if __name__ == "__main__":
    main()
