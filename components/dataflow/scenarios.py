"""Scenarios of the data-flow area: ProxyStore's futures (task pipelining) and streams.

``scenario=futures_chain`` is the pipelining benchmark of the proxy-patterns paper (TPDS'24,
``psbench task_pipelining``): a chain of tasks, each needing its predecessor's data only for
the last ``1 − overhead_fraction`` of its run. ``mode=sequential`` passes each result to the
next task by the task graph (a task starts when its parent ended); ``mode=pipelined`` submits
every task at once with a future of its input and a future for its output, so a task does its
input-free part while its predecessor still runs. A failing task (``fail_at``) fails its
output future, and the tasks after it fail at once with its error instead of timing out.

``scenario=stream`` is the stream benchmark: a producer streams items through a broker (Loom's
event fabric or Redis); a dispatcher on the client receives each (a proxy, or the bytes inline)
and runs one task per item that reads it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from contextlib import ExitStack
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, model_validator

from components.base import RunContext, Scenario, ScenarioConfig
from components.dataflow.futures import DataFuture, resolve
from components.dataflow.streams import FabricPublisher, FabricSubscriber, digest, stream_payload
from components.dataflow.wake import EventsWake, Wake, events_wake
from components.runtime.trial import TaskTrial


def derive(data: bytes, index: int, size: int) -> bytes:
    """The output of chain task ``index``: ``size`` bytes that depend on all of ``data``."""
    block = hashlib.blake2b(data, digest_size=64, salt=index.to_bytes(8, "little")[:16]).digest()
    return (block * (size // len(block) + 1))[:size]


def chain_task(
    index: int, task_s: float, overhead_fraction: float, size: int, source: Any,
    output: DataFuture | None, fail: bool,
) -> bytes | int:  # fmt: skip
    """One link: input-free work, then the input (waiting for it if a future), then the rest.

    With an output future the result goes there (the task returns its size); a failure is
    stored in the future before it propagates, so the next link fails at once.
    """
    try:
        time.sleep(task_s * overhead_fraction)
        data = resolve(source)
        time.sleep(task_s * (1 - overhead_fraction))
        if fail:
            raise RuntimeError(f"chain task {index} failed (fail_at={index})")
        out = derive(bytes(data), index, size)
    except BaseException as exc:
        if output is not None:
            output.set_exception(exc)
        raise
    if output is None:
        return out
    output.set_result(out)
    return len(out)


class FuturesChainConfig(ScenarioConfig):
    """A chain of tasks, sequential or pipelined through ProxyStore futures."""

    kind: Literal["futures_chain"] = "futures_chain"
    requires: ClassVar[tuple[str, ...]] = ("executor", "dataflow")
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "makespan_s", "result_verified", "tasks_failed", "store_keys_leaked",
    )  # fmt: skip

    mode: Literal["sequential", "pipelined"] = Field("pipelined", description="how links meet")
    tasks: int = Field(8, ge=1, le=10_000, description="links of the chain")
    task_s: float = Field(1.0, ge=0, le=3600, description="each link's run time (s)")
    overhead_fraction: float = Field(
        0.5, ge=0, le=1, description="part of each link that does not need its input"
    )
    data_bytes: int = Field(10_000_000, ge=1, le=2**30, description="bytes each link passes on")
    fail_at: int | None = Field(None, ge=0, description="index of a link that fails")
    timeout_s: float = Field(120.0, gt=0, le=86_400, description="a link waits this long")
    wake: Literal["auto", "events", "poll"] = Field(
        "auto",
        description="how a waiting link is woken: auto (Redis pub/sub on the redis connector, "
        "else polling), events (a topic of the event fabric), poll",
    )

    def needs(self) -> tuple[str, ...]:
        """The event fabric too when links are woken through it."""
        return (*self.requires, "events") if self.wake == "events" else self.requires

    def build(self) -> Scenario:
        """Create the scenario."""
        return FuturesChain(self)


class FuturesChain:
    """One trial: run the chain, check the last link's output against a local run."""

    def __init__(self, config: FuturesChainConfig) -> None:
        self.config = config
        self._events_wake: EventsWake | None = None

    def run(self, ctx: RunContext) -> None:
        """Submit the chain in the configured mode and record it."""
        cfg = self.config
        payload = derive(ctx.seed.to_bytes(8, "little"), -1 % 2**31, cfg.data_bytes)
        flow: Any = ctx.components.get("dataflow")
        if cfg.mode == "pipelined" and not hasattr(flow, "future"):
            raise ValueError(
                "scenario.mode=pipelined needs futures: run it with dataflow=proxystore "
                "(connector file, redis or fabric)"
            )
        trial = TaskTrial(ctx)
        futures: list[DataFuture] = []
        with trial as path, ctx.progress.bar(f"trial {ctx.trial}: chain", cfg.tasks):
            args = (cfg.task_s, cfg.overhead_fraction, cfg.data_bytes)
            if cfg.mode == "sequential":
                source: Any = payload
                for i in range(cfg.tasks):
                    source = path.submit(chain_task, i, *args, source, None, i == cfg.fail_at,
                                         name="link")  # fmt: skip
                path.wait()
                last = source.value if source.success else None
            else:
                wake = self._wake(ctx)
                futures = [flow.future(bytes, cfg.timeout_s, wake) for _ in range(cfg.tasks)]
                for i in range(cfg.tasks):
                    given = payload if i == 0 else futures[i - 1].proxy()
                    path.submit(chain_task, i, *args, given, futures[i], i == cfg.fail_at,
                                name="link")  # fmt: skip
                path.wait()
                last = futures[-1].result(1.0) if path.tasks[-1].success else None
            expected = payload
            for i in range(cfg.tasks):
                expected = derive(expected, i, cfg.data_bytes)
            verified = last is not None and bytes(last) == expected
            for future in futures:  # the futures' keys are this scenario's to free
                flow.store.evict(future.key)
        first_failure = next((t.done for t in path.tasks if not t.success), None)
        last_done = max(t.done for t in path.tasks)
        trial.record({
            "result_verified": float(verified),
            # How long the chain ran on after the first failure: short when links fail fast.
            "failure_spread_s": (last_done - first_failure) if first_failure else 0.0,
        })  # fmt: skip

    def _wake(self, ctx: RunContext) -> Wake | Literal["auto"] | None:
        """The configured wake channel (one topic for the job's trials); None: polling."""
        if self.config.wake != "events":
            return None if self.config.wake == "poll" else "auto"
        if self._events_wake is None:
            from components.events.fabric import KafkaFabric

            fabric = ctx.component("events", KafkaFabric)
            session = fabric.session(fabric.config.principals[0])
            self._events_wake = events_wake(session, f"wake-{time.time_ns() % 10**12}")
        return self._events_wake


# Kafka's default largest message (message.max.bytes) less room for the event's metadata.
INLINE_LIMIT_BYTES = 900_000


class StreamConfig(ScenarioConfig):
    """ProxyStore's stream benchmark: a producer streams items, a dispatcher runs a task each."""

    kind: Literal["stream"] = "stream"
    requires: ClassVar[tuple[str, ...]] = ("executor", "dataflow", "events")
    # Its figures are items and MB per second on this machine: it runs alone.
    exclusive: ClassVar[bool] = True
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "items_per_s", "mb_per_s", "result_verified", "store_keys_leaked",
    )  # fmt: skip

    broker: Literal["events", "redis"] = Field(
        "events", description="where item metadata goes: Loom's event fabric, or Redis"
    )
    method: Literal["proxy", "inline"] = Field(
        "proxy", description="proxy: bulk data in the store; inline: inside each message"
    )
    items: int = Field(50, ge=1, le=1_000_000, description="items streamed")
    item_bytes: int = Field(1_000_000, ge=1, le=2**30, description="bytes per item")
    timeout_s: float = Field(60.0, gt=0, le=3600, description="a silent stream fails after")

    @model_validator(mode="after")
    def _inline_fits(self) -> Self:
        if self.method == "inline" and self.item_bytes > INLINE_LIMIT_BYTES:
            raise ValueError(
                f"item_bytes={self.item_bytes} with method=inline: a message holds at most "
                f"{INLINE_LIMIT_BYTES} bytes here (Kafka's message.max.bytes); use method=proxy"
            )
        return self

    def build(self) -> Scenario:
        """Create the scenario."""
        return Stream(self)


class Stream:
    """One trial: stream, dispatch a task per item, check every digest."""

    def __init__(self, config: StreamConfig) -> None:
        self.config = config

    def run(self, ctx: RunContext) -> None:
        """Stream the items through the broker and the store; run a task per item."""
        from proxystore.stream import StreamConsumer, StreamProducer

        cfg = self.config
        flow: Any = ctx.components.get("dataflow")
        if cfg.method == "proxy" and not hasattr(flow, "store"):
            raise ValueError("scenario.method=proxy needs a store: run with dataflow=proxystore")
        store = flow.store if cfg.method == "proxy" else None
        with ExitStack() as stack:
            topic, publisher, subscriber = self._broker(ctx, stack, flow)
            producer: StreamProducer[bytes] = StreamProducer(publisher, default_store=store)
            consumer: StreamConsumer[bytes] = StreamConsumer(subscriber)
            expected = [digest(stream_payload(i, cfg.item_bytes)) for i in range(cfg.items)]
            errors: list[BaseException] = []

            def produce() -> None:
                try:
                    for i in range(cfg.items):
                        producer.send(topic, stream_payload(i, cfg.item_bytes), evict=True)
                    producer.close_topics(topic)
                except BaseException as exc:  # reported below, not lost in the thread
                    errors.append(exc)

            trial = TaskTrial(ctx)
            began = time.perf_counter()
            sender = threading.Thread(target=produce, name="loom-stream-producer")
            with trial as path, ctx.progress.bar(f"trial {ctx.trial}: stream", cfg.items):
                sender.start()
                tasks = [path.submit(digest, item, name="item") for item in consumer]
                path.wait()
                sender.join()
                seconds = time.perf_counter() - began
                got = sorted(t.value for t in tasks if t.success)
            producer.close(publisher=True)
            consumer.close(subscriber=True)
        if errors:
            raise errors[0]
        trial.record({
            "items_per_s": len(tasks) / seconds,
            "mb_per_s": len(tasks) * cfg.item_bytes / seconds / 1e6,
            "result_verified": float(got == sorted(expected)),
        })  # fmt: skip

    def _broker(self, ctx: RunContext, stack: ExitStack, flow: Any) -> tuple[str, Any, Any]:
        """The topic, the publisher and the subscriber of the configured broker."""
        cfg = self.config
        name = f"stream-t{ctx.trial}-{time.time_ns() % 10**9}"
        if cfg.broker == "redis":
            from proxystore.stream.shims.redis import RedisQueuePublisher, RedisQueueSubscriber

            connector: Any = getattr(getattr(flow, "store", None), "connector", None)
            if type(connector).__name__ == "RedisConnector":
                host, port = connector.hostname, int(connector.port)
            else:  # a server of the trial's own
                from components.storage.redis_peer import redis_server

                client = stack.enter_context(redis_server(2 * cfg.item_bytes))
                host, port = "127.0.0.1", int(client.connection_pool.connection_kwargs["port"])
            subscriber = RedisQueueSubscriber(host, port, name, timeout=int(cfg.timeout_s))
            return name, RedisQueuePublisher(host, port), subscriber
        from components.events.fabric import KafkaFabric

        fabric = ctx.component("events", KafkaFabric)
        session = fabric.session(fabric.config.principals[0])
        topic = session.create_topic(name, partitions=1)
        stack.callback(session.delete_topic, name)
        consumer = session.consumer([topic], group=name)
        stack.callback(consumer.close)
        consumer.wait_assigned(1)
        return topic, FabricPublisher(session.producer()), FabricSubscriber(consumer, cfg.timeout_s)
