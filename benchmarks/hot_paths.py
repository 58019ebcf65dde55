"""Issue 40's per-item costs measured in isolation, each beside what it is compared to.

Run:  python benchmarks/hot_paths.py [--puts 1000]
Prints the table and writes results/benchmarks/hot_paths.{md,json}.

1. An event producer's ``produce()`` with a C function standing in for confluent-kafka's
   client, against a bare loop calling the same function: what the wrapper adds per event
   (no broker: the client's own cost, about 1 µs, is the same on both sides).
2. ``--puts`` puts of 1 MiB into a fabric over 6 local containers, isal (4,6): milliseconds a
   put, and this process's user and system CPU seconds (what the kernel's file work costs).
3. Put, get and evict of a 10 kB object through the fabric's ProxyStore connector, with the
   per-container byte counters flushed to the catalog after each put and get, and without
   (counters held at zero): what counting the fabric's bytes for carbon costs.
4. The floor under the Dask steering row: a no-op's round trip through ``Client.submit``
   (client → scheduler → worker → scheduler → client) and through a Dask actor's method
   (client → worker → client, no scheduler), against a round trip over a pipe to a child
   process, which is what Colmena's ``LocalTaskServer`` does per task.
5. The floor under the steering row over the event fabric: one event's trip through the
   embedded broker with bare confluent-kafka clients and the settings Colmena's queues over
   the fabric use (``linger.ms`` 0, a 1 ms fetch wait), one event in flight at a time; a
   steering task makes two such trips (request, result), and its reaction is the second.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from tables import publish  # benchmarks/ is the script's folder

from components.coding.isal import IsalCoder
from components.coding.zfec import ZfecConfig
from components.dataflow._connectors import FabricConnector
from components.events._access import AccessControl
from components.events.clients import FabricProducer
from components.placement.utility_factor import UtilityFactorConfig, UtilityFactorPlacer
from components.storage.container import DataContainer
from components.storage.local import LocalStorageConfig

MIB = 2**20


def producer_wrapper(n: int = 200_000, rounds: int = 7) -> dict[str, object]:
    """ns per event: ``produce()`` over a C stand-in vs the bare loop over it."""
    acl = AccessControl()
    acl.add_principal("loom")
    producer = FabricProducer(acl, "loom", {"bootstrap.servers": "127.0.0.1:1"})
    producer._produce = slice  # a C function of three arguments, as the client's produce
    keys = [f"k{i}".encode() for i in range(64)]
    payload = b"x" * 100
    bare_s, wrapped_s = [], []
    for _ in range(rounds):
        began = time.perf_counter()
        send = slice
        for i in range(n):
            send("loom.t", payload, keys[i & 63])
            if i % 1000 == 0:
                producer._client.poll(0)
        bare_s.append(time.perf_counter() - began)
        began = time.perf_counter()
        for i in range(n):
            producer.produce("t", payload, key=keys[i & 63])
        wrapped_s.append(time.perf_counter() - began)
    bare, wrapped = statistics.median(bare_s) / n * 1e9, statistics.median(wrapped_s) / n * 1e9
    return {
        "path": "produce() per event",
        "peer": "bare loop",
        "loom": f"{wrapped:.0f} ns",
        "peer_figure": f"{bare:.0f} ns",
        "added": f"{wrapped - bare:.0f} ns",
    }


def local_puts(puts: int) -> dict[str, object]:
    """ms a 1 MiB put and the CPU it takes in user and system time."""
    data = np.random.default_rng(1).bytes(MIB)
    with (
        tempfile.TemporaryDirectory() as root,
        LocalStorageConfig(containers=6, root=root, segment_size_mb=8).build() as network,
        tempfile.TemporaryDirectory() as tmp,
        network.fabric(
            IsalCoder(4, 6, "cauchy"), UtilityFactorPlacer(), Path(tmp) / "c.db"
        ) as fabric,
    ):
        store = fabric.connect(*next(iter(fabric.tenants.items())))
        for _ in range(5):
            store.put("bench", "obj", data)
        before, began = os.times(), time.perf_counter()
        for _ in range(puts):
            store.put("bench", "obj", data)
        wall, after = time.perf_counter() - began, os.times()
    user, system = after.user - before.user, after.system - before.system
    return {
        "path": f"{puts} puts of 1 MiB, 6 local containers",
        "peer": "system CPU",
        "loom": f"{wall / puts * 1e3:.2f} ms a put, user {user:.1f} s",
        "peer_figure": f"system {system:.1f} s",
        "added": f"system / user {system / user:.1f}",
    }


def put_breakdown(puts: int = 300) -> dict[str, object]:
    """Where a 1 MiB put's time goes (encode, chunk hashes and rows, writes, the rest),
    beside a redis-server put of the same bytes from this process."""
    from components.storage.fabric import StorageFabric
    from components.storage.redis_peer import redis_server

    spent: dict[str, float] = {}

    def timed(owner: Any, name: str) -> None:
        inner = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - began

        setattr(owner, name, wrapper)

    coder = IsalCoder(4, 6, "cauchy")
    data = np.random.default_rng(2).bytes(MIB)
    timed(coder, "encode")
    saved = {name: getattr(StorageFabric, name) for name in ("_place", "_write_chunk")}
    for name in saved:
        timed(StorageFabric, name)
    try:
        with (
            tempfile.TemporaryDirectory() as root,
            LocalStorageConfig(containers=6, root=root, segment_size_mb=8).build() as network,
            network.fabric(coder, UtilityFactorPlacer(), Path(root) / "c.db") as fabric,
        ):
            store = fabric.connect(*next(iter(fabric.tenants.items())))
            for _ in range(20):
                store.put("bench", "obj", data)
            spent.clear()
            began = time.perf_counter()
            for _ in range(puts):
                store.put("bench", "obj", data)
            total = time.perf_counter() - began
    finally:
        for name, method in saved.items():
            setattr(StorageFabric, name, method)
    with redis_server(MIB) as client:
        for _ in range(20):
            client.set("obj", data)
        began = time.perf_counter()
        for _ in range(puts):
            client.set("obj", data)
        redis = time.perf_counter() - began
    ms = {name: seconds / puts * 1e3 for name, seconds in spent.items()}
    rest = total / puts * 1e3 - sum(ms.values())
    return {
        "path": "a 1 MiB put, isal (4,6), 6 local containers",
        "peer": "redis-server put from this process",
        "loom": (
            f"{total / puts * 1e3:.2f} ms: encode {ms['encode']:.2f}, chunk hashes and rows "
            f"{ms['_place']:.2f}, 6 writes {ms['_write_chunk']:.2f}, catalog, old version's "
            f"chunks and hand-offs {rest:.2f}"
        ),
        "peer_figure": f"{redis / puts * 1e3:.2f} ms",
        "added": f"{redis / total:.2f}× redis's speed",
    }


def connector_counting(ops: int = 300, rounds: int = 5) -> dict[str, object]:
    """ms per put + get + evict of 10 kB, byte counters flushed or held at zero."""

    def run(counting: bool) -> float:
        with tempfile.TemporaryDirectory() as root:
            opened = FabricConnector(
                LocalStorageConfig(containers=6, root=root), ZfecConfig(), UtilityFactorConfig()
            ).open()
            connector: Any = opened.connector
            if not counting:
                for container in connector.fabric.containers:
                    container._moved = 0
                    container._transfer = _uncounted(container)
            data, times = b"x" * 10_000, []
            for _ in range(rounds):
                began = time.perf_counter()
                for _ in range(ops):
                    key = connector.put(data)
                    connector.get(key)
                    connector.evict(key)
                times.append((time.perf_counter() - began) / ops * 1e3)
            opened.close()
            return statistics.median(times)

    counted, uncounted = run(True), run(False)
    return {
        "path": "connector put + get + evict, 10 kB",
        "peer": "bytes not counted",
        "loom": f"{counted:.2f} ms",
        "peer_figure": f"{uncounted:.2f} ms",
        "added": f"{counted / uncounted:.3f}×",
    }


def _uncounted(container: DataContainer) -> Any:
    """The container's link transfer without its byte count (the flush then writes nothing)."""
    link = container.link

    def transfer(fault: Any, nbytes: int) -> None:
        if link is not None:
            link.transfer(nbytes)

    return transfer


class _Runner:
    """A Dask actor that calls what it is given."""

    def run(self, fn: Any, *args: Any) -> Any:
        return fn(*args)


def _echo(value: Any) -> Any:
    return value


def _serve_pipe(end: Any) -> None:
    while (message := end.recv()) is not None:
        end.send(message)


def _percentiles(call: Any, n: int) -> tuple[float, float]:
    for i in range(20):
        call(i)
    times = []
    for i in range(n):
        began = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - began)
    times.sort()
    return times[n // 2] * 1e3, times[int(n * 0.99)] * 1e3


def dask_floor(n: int = 400) -> list[dict[str, object]]:
    """Round-trip ms (p50, p99) of a no-op: Dask submit, Dask actor, a pipe to a child."""
    from distributed import Client, LocalCluster

    here, there = multiprocessing.Pipe()
    child = multiprocessing.get_context("spawn").Process(target=_serve_pipe, args=(there,))
    child.start()

    def over_pipe(i: int) -> None:
        here.send(i)
        here.recv()

    pipe = _percentiles(over_pipe, n)
    here.send(None)
    child.join()
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, dashboard_address=None, host="127.0.0.1"
        ) as cluster,
        Client(cluster) as client,
    ):
        executor = client.get_executor(pure=False)
        submit = _percentiles(lambda i: executor.submit(_echo, i).result(), n)
        actor = client.submit(_Runner, actor=True).result()
        direct = _percentiles(lambda i: actor.run(_echo, i).result(), n)
    return [
        {
            "path": f"no-op round trip, {label}",
            "peer": "pipe to a child process (Colmena's local server)",
            "loom": f"p50 {ours[0]:.2f} ms, p99 {ours[1]:.2f} ms",
            "peer_figure": f"p50 {pipe[0]:.2f} ms, p99 {pipe[1]:.2f} ms",
            "added": f"{ours[1] / pipe[1]:.1f}× at p99",
        }
        for label, ours in (("Dask Client.submit", submit), ("Dask actor call", direct))
    ]


def broker_floor(n: int = 300) -> dict[str, object]:
    """ms (p50, p99) of one event's produce → consume through the embedded broker, bare."""
    from confluent_kafka import Consumer, Producer

    from components.events.embedded import EmbeddedEventsConfig

    with EmbeddedEventsConfig().build() as fabric:
        settings = fabric.client_settings()
        settings.pop("logger")
        topic = fabric.session("loom").create_topic(f"floor-{uuid.uuid4().hex[:6]}")
        assigned = threading.Event()
        consumer = Consumer(
            {
                **settings,
                **fabric.config.consumer.librdkafka(),
                **fabric.prompt_settings(),
                "group.id": f"floor-{topic}",
            }
        )
        consumer.subscribe([topic], on_assign=lambda c, p: assigned.set())
        producer = Producer({**settings, **fabric.config.producer.librdkafka(), "linger.ms": 0})
        while not assigned.is_set():
            consumer.poll(0.1)

        def trip(i: int) -> None:
            producer.produce(topic, str(i).encode())
            producer.poll(0)
            while True:
                message = consumer.poll(1.0)
                if message is not None and message.error() is None:
                    return

        one = _percentiles(trip, n)
        producer.flush(10)
        consumer.close()
    return {
        "path": "one event through the embedded broker, bare confluent-kafka, 1 ms fetch wait",
        "peer": "pipe to a child process (a whole round trip)",
        "loom": f"p50 {one[0]:.2f} ms, p99 {one[1]:.2f} ms",
        "peer_figure": "see the rows above",
        "added": "a steering reaction (result → Thinker) is one such trip",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--puts", type=int, default=1000)
    args = parser.parse_args()
    rows = [
        producer_wrapper(),
        local_puts(args.puts),
        put_breakdown(),
        connector_counting(),
        *dask_floor(),
        broker_floor(),
    ]
    publish("hot_paths", {"Per-item costs (issue 40)": rows})


if __name__ == "__main__":
    main()
