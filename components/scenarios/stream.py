"""``scenario=stream``: ProxyStore's stream benchmark.

A producer streams items through a broker (Loom's event fabric or Redis); a dispatcher on the
client receives each (a proxy, or the bytes inline) and runs one task per item that reads it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, model_validator

from components.base import ComponentConfig, RunContext, Scenario, ScenarioConfig
from components.dataflow.streams import FabricPublisher, FabricSubscriber, digest, stream_payload
from components.runtime.trial import TASK_PATH_FAULTS, TaskTrial

INLINE_LIMIT_BYTES = 900_000


class StreamConfig(ScenarioConfig):
    """ProxyStore's stream benchmark: a producer streams items, a dispatcher runs a task each."""

    kind: Literal["stream"] = "stream"
    requires: ClassVar[tuple[str, ...]] = ("executor", "dataflow", "events")
    fault_kinds: ClassVar[frozenset[str]] = TASK_PATH_FAULTS
    # Its figures are items and MB per second on this machine: it runs alone.
    exclusive: ClassVar[bool] = True
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "items_per_s",
        "mb_per_s",
        "result_verified",
        "store_keys_leaked",
    )

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

    def check_components(self, groups: Mapping[str, ComponentConfig]) -> list[str]:
        """Items by proxy need the data flow's store."""
        if self.method == "proxy" and groups["dataflow"].kind != "proxystore":
            return [
                f"scenario.method=proxy needs a store, which dataflow={groups['dataflow'].kind} "
                "has not: choose dataflow=proxystore, or scenario.method=inline"
            ]
        return []

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
        trial.record(
            {
                "items_per_s": len(tasks) / seconds,
                "mb_per_s": len(tasks) * cfg.item_bytes / seconds / 1e6,
                "result_verified": float(got == sorted(expected)),
            }
        )

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
        from components.events.fabric import KafkaEventFabric

        fabric = ctx.component("events", KafkaEventFabric)
        session = fabric.session(fabric.config.principals[0])
        topic = session.create_topic(name, partitions=1)
        stack.callback(session.delete_topic, name)
        consumer = session.consumer([topic], group=name)
        stack.callback(consumer.close)
        consumer.wait_assigned(1)
        return topic, FabricPublisher(session.producer()), FabricSubscriber(consumer, cfg.timeout_s)
