"""The event-throughput scenario: producers and consumers on one topology, latency per event.

It reads its topology (topics, producers, consumers) from the ``events`` config and runs it on
the fabric's own clients, in threads of the Loom process. (Triggers: ``trigger_scenario``;
access rules: ``access_scenario``.)
"""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from components.base import RunContext, ScenarioConfig
from components.events.clients import FabricConsumer
from components.events.fabric import KafkaEventFabric, fabric_of
from components.events.plots import plot_latency
from components.events.protocol import Access, EventsError
from components.scenarios.event_workload import (
    ConsumerTally,
    ProducerResult,
    event_keys,
    percentile_ms,
    run_consumer,
    run_producer,
)


class EventThroughputConfig(ScenarioConfig):
    """Producers and consumers of the topology on a fresh topic per trial."""

    kind: Literal["event_throughput"] = "event_throughput"
    requires: ClassVar[tuple[str, ...]] = ("events",)
    # Its figures are the machine's event rates: another job beside it would halve them.
    exclusive: ClassVar[bool] = True
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "produce_events_per_s",
        "consume_events_per_s",
        "end_to_end_latency_p99_ms",
        "events_lost",
    )
    drain_timeout_s: float = Field(
        60.0, gt=0, le=3600, description="wait this long for consumers after producers finish"
    )

    def build(self) -> EventThroughput:
        """The scenario."""
        return EventThroughput(self)


class EventThroughput:
    """See :class:`EventThroughputConfig`."""

    def __init__(self, config: EventThroughputConfig) -> None:
        self.config = config

    def run(self, ctx: RunContext) -> None:
        """Create the trial's topic, start consumers, produce, drain, record."""
        fabric = fabric_of(ctx)
        topo = fabric.config
        pspec = topo.producers
        if pspec is None:
            raise EventsError("scenario=event_throughput needs events.producers")
        declared = topo.declared()[topo.full_topic(pspec.topic)]
        owner = fabric.session(topo.owner(declared))
        topic = owner.create_topic(
            f"{declared.name}-trial{ctx.trial}-{time.time_ns() % 10**9}",
            partitions=declared.partitions,
            retention_ms=declared.retention_ms,
        )
        for principal, access in owner.list_grants(declared.name).items():
            owner.grant(topic, principal, read=Access.READ in access, write=Access.WRITE in access)
        try:
            self._measure(ctx, fabric, topic, declared.partitions)
        finally:
            owner.delete_topic(topic)

    def _measure(
        self, ctx: RunContext, fabric: KafkaEventFabric, topic: str, partitions: int
    ) -> None:
        pspec = fabric.config.producers
        assert pspec is not None
        tally = ConsumerTally(pspec.count * pspec.events)
        stop = threading.Event()
        threads: list[threading.Thread] = []
        consumers: list[FabricConsumer] = []
        try:
            join_s = self._start_consumers(
                fabric, topic, partitions, tally, stop, threads, consumers
            )
            self._produce_and_drain(ctx, fabric, topic, tally)
            ctx.log_metric("group_join_s", join_s)
            # Jumps in a partition's offsets that the consumers read again (offsets.py).
            ctx.log_metric("offset_rereads", sum(c.rereads for c in consumers))
        finally:
            stop.set()
            for thread in threads:
                thread.join(10)
            for consumer in consumers:  # before the topic goes: no metadata of a deleted topic
                consumer.close()

    @staticmethod
    def _start_consumers(
        fabric: KafkaEventFabric,
        topic: str,
        partitions: int,
        tally: ConsumerTally,
        stop: threading.Event,
        threads: list[threading.Thread],
        consumers: list[FabricConsumer],
    ) -> float:
        """Join the consumer group, wait until it settled, start polling; the join's seconds."""
        cspec, pspec = fabric.config.consumers, fabric.config.producers
        if cspec is None or pspec is None:
            return 0.0
        session = fabric.session(cspec.principal or topic.split(".", 1)[0])
        group = f"{cspec.group}-{topic.rsplit('-', 1)[-1]}"
        began = time.perf_counter()
        consumers += [
            session.consumer([topic], group=group, value_format=pspec.value_format)
            for _ in range(cspec.count)
        ]
        _wait_group(consumers, partitions)
        join_s = time.perf_counter() - began
        for consumer in consumers:
            thread = threading.Thread(
                target=run_consumer,
                args=(consumer, tally, stop, fabric.config.consumer.max_poll_events),
                daemon=True,
            )
            thread.start()
            threads.append(thread)
        return join_s

    def _produce_and_drain(
        self, ctx: RunContext, fabric: KafkaEventFabric, topic: str, tally: ConsumerTally
    ) -> None:
        pspec = fabric.config.producers
        assert pspec is not None
        expected = tally.expected
        session = fabric.session(pspec.principal or topic.split(".", 1)[0])
        rng = np.random.default_rng(ctx.seed + ctx.trial)
        seeds = rng.integers(0, 2**32, pspec.count)
        results = [ProducerResult() for _ in range(pspec.count)]
        errors: list[BaseException] = []
        sent = [0] * pspec.count
        start = threading.Barrier(pspec.count)

        def produce(index: int) -> None:
            try:
                producer = session.producer(value_format=pspec.value_format)
                keys = event_keys(pspec, np.random.default_rng(seeds[index]))
                results[index] = run_producer(
                    producer,
                    topic,
                    pspec,
                    index,
                    keys,
                    progress=lambda n: sent.__setitem__(index, n),
                    start=start,
                )
            except BaseException as exc:  # raised below, in the scenario's thread
                errors.append(exc)
                start.abort()  # the other producers stop waiting for this one

        producers = [
            threading.Thread(target=produce, args=(i,), daemon=True) for i in range(pspec.count)
        ]
        with ctx.progress.bar(f"producing {expected:,} events", expected) as bar:
            for thread in producers:
                thread.start()
            while any(t.is_alive() for t in producers):
                bar.update(sum(sent))
                time.sleep(0.2)
            bar.update(expected)
        if errors:
            raise errors[0]
        if fabric.config.consumers is not None:
            tally.done.wait(self.config.drain_timeout_s)
        self._record(ctx, pspec.event_size, results, tally, fabric.config.consumers is not None)

    @staticmethod
    def _record(
        ctx: RunContext,
        event_size: int,
        results: list[ProducerResult],
        tally: ConsumerTally,
        consumed: bool,
    ) -> None:
        expected = tally.expected
        span = max(r.ended for r in results) - min(r.began for r in results)
        ctx.log_metrics(
            {
                "events_produced": expected,
                "produce_events_per_s": expected / span,
                "produce_mb_per_s": expected * event_size / span / 1e6,
                "produce_events_per_s_per_producer": expected / span / len(results),
            }
        )
        if not consumed:
            return
        consume_span = max(tally.last - tally.first, 1e-9)
        ctx.log_metrics(
            {
                "events_consumed": tally.received,
                "consume_events_per_s": tally.received / consume_span,
                "end_to_end_latency_p50_ms": percentile_ms(tally.latencies_ns, 50),
                "end_to_end_latency_p99_ms": percentile_ms(tally.latencies_ns, 99),
                "events_lost": expected - len(tally.seen),
                "events_duplicated": tally.received - len(tally.seen),
            }
        )
        plot_latency(tally.latencies_ns, ctx.run_dir / "latency.png")


def _wait_group(consumers: list[Any], partitions: int, timeout_s: float = 60.0) -> None:
    """Poll every consumer until the group has assigned all partitions."""
    deadline = time.monotonic() + timeout_s
    while sum(len(c.assigned) for c in consumers) < partitions or any(
        c.rebalances == 0 for c in consumers[:partitions]
    ):
        if time.monotonic() > deadline:
            raise EventsError(f"the consumer group did not settle within {timeout_s:g} s")
        for consumer in consumers:
            if consumer.poll(1, 0.02):
                raise EventsError("events arrived before producing started")
