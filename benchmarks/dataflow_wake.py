"""Futures: how fast a waiting consumer wakes, and how often it looks in the store, per channel.

Run:  python benchmarks/dataflow_wake.py [--waits 20] [--wait-s 0.3]
Writes results/benchmarks/dataflow_wake.{md,json}.

Each wait: a consumer thread calls ``future.result()``; ``wait_s`` later the producer calls
``set_result``; the figure is the time from ``set_result`` to the consumer holding the value,
and the store looks per wait. Channels: Redis pub/sub (redis connector), a topic of the
embedded event fabric (file connector), and polling from 1 ms doubling to 50 ms (file
connector), ratios to polling in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from contextlib import ExitStack
from typing import Any

from tables import publish  # benchmarks/ is the script's folder

from components.dataflow import futures, wake
from components.dataflow.proxystore_flow import ProxyStoreConfig, ProxyStoreFlow
from components.events.embedded import EmbeddedEventsConfig


def _consume(future: futures.DataFuture, got: list[float]) -> None:
    future.result()
    got.append(time.perf_counter())


def measure(channel: str, waits: int, wait_s: float) -> dict[str, Any]:
    """Latency quantiles and looks per wait of one channel."""
    with ExitStack() as stack:
        connector = "redis" if channel == "redis pub/sub" else "file"
        flow = stack.enter_context(ProxyStoreConfig(connector=connector).build())
        assert isinstance(flow, ProxyStoreFlow)
        how: Any = "auto" if channel == "redis pub/sub" else None
        if channel == "event fabric":
            fabric = stack.enter_context(EmbeddedEventsConfig().build())
            how = wake.events_wake(fabric.session("loom"), "bench-wake")
            stack.callback(wake.close_all)
        latencies: list[float] = []
        futures.wait_stats.clear()
        for _ in range(waits):
            future = flow.future(bytes, 30, how)
            got: list[float] = []
            consumer = threading.Thread(target=_consume, args=(future, got))
            consumer.start()
            time.sleep(wait_s)
            began = time.perf_counter()
            future.set_result(b"x" * 1000)
            consumer.join(30)
            latencies.append(1e3 * (got[0] - began))
            flow.store.evict(future.key)
        ordered = sorted(latencies)
        return {
            "channel": channel,
            "connector": connector,
            "wake ms p50": round(statistics.median(latencies), 2),
            "wake ms p90": round(ordered[int(0.9 * (len(ordered) - 1))], 2),
            "looks per wait": futures.wait_stats["looks"] / waits,
            "missed notices": futures.wait_stats["missed"],
        }


def main() -> None:
    """Measure every channel and publish the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--waits", type=int, default=20, help="waits per channel")
    parser.add_argument("--wait-s", type=float, default=0.3, help="seconds each consumer waits")
    args = parser.parse_args()
    rows = [
        measure(c, args.waits, args.wait_s) for c in ("redis pub/sub", "event fabric", "polling")
    ]
    poll = rows[-1]["wake ms p50"]
    for row in rows:
        row["p50 / polling"] = round(row["wake ms p50"] / poll, 2)
    publish("dataflow_wake", {f"future wake-up after a {args.wait_s:g} s wait": rows})


if __name__ == "__main__":
    main()
