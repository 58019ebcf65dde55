"""``scenario=event_triggers``: mixed events, filtered triggers on the executor, dead letters."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from components.base import ComponentConfig, RunContext, ScenarioConfig
from components.events.fabric import fabric_of
from components.events.filters import compile_filter
from components.events.protocol import EventsError
from components.events.topology import EventsConfig
from components.events.triggers import Trigger

EVENT_TYPES = ("created", "updated", "deleted")


class EventTriggersConfig(ScenarioConfig):
    """A producer emits mixed JSON events; the topology's triggers handle what matches."""

    kind: Literal["event_triggers"] = "event_triggers"
    requires: ClassVar[tuple[str, ...]] = ("events", "executor")
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "events_matched",
        "events_handled",
        "dead_lettered",
        "trigger_latency_p99_ms",
    )
    events: int = Field(1000, ge=1, le=10_000_000, description="events the producer emits")
    topic: str | None = Field(None, description="topic to emit to (default: the first trigger's)")
    poison_share: float = Field(0.01, ge=0, le=1, description="events every handler call fails on")
    flaky_share: float = Field(0.05, ge=0, le=1, description="events whose first call fails")
    malformed_share: float = Field(0.01, ge=0, le=1, description="events that are not JSON")
    drain_timeout_s: float = Field(60.0, gt=0, le=3600, description="wait for the triggers")

    def check_components(self, groups: Mapping[str, ComponentConfig]) -> list[str]:
        """Triggers to run must be declared."""
        if not getattr(groups["events"], "triggers", None):
            return [
                "scenario=event_triggers needs events.triggers: declare at least one "
                "(recipe=octopus/triggers declares three)"
            ]
        return []

    def build(self) -> EventTriggers:
        """The scenario."""
        return EventTriggers(self)


def mixed_events(config: EventTriggersConfig, seed: int) -> list[dict[str, Any] | bytes]:
    """The events of one trial: typed JSON documents and a share of malformed bytes."""
    rng = np.random.default_rng(seed)
    kinds = rng.integers(0, len(EVENT_TYPES), config.events)
    sizes = rng.integers(1, 10_000, config.events)
    draw = rng.random((3, config.events))
    out: list[dict[str, Any] | bytes] = []
    for i in range(config.events):
        if draw[0, i] < config.malformed_share:
            out.append(b"{not json: " + str(i).encode())
            continue
        out.append(
            {
                "id": i,
                "event_type": EVENT_TYPES[kinds[i]],
                "size": int(sizes[i]),
                "source": f"sensor-{i % 7}",
                "poison": bool(draw[1, i] < config.poison_share),
                "flaky": bool(draw[2, i] < config.flaky_share),
            }
        )
    return out


class EventTriggers:
    """See :class:`EventTriggersConfig`."""

    def __init__(self, config: EventTriggersConfig) -> None:
        self.config = config

    def run(self, ctx: RunContext) -> None:
        """Start the triggers, emit the events, wait until every trigger saw all of them."""
        fabric = fabric_of(ctx)
        topo = fabric.config
        if not topo.triggers:
            raise EventsError("scenario=event_triggers needs events.triggers")
        executor = ctx.component("executor", object)
        triggers: list[Trigger] = []
        for spec in topo.triggers:
            topic = topo.full_topic(spec.topic)
            session = fabric.session(spec.principal or topic.split(".", 1)[0])
            triggers.append(session.trigger(spec, executor))
        topic = topo.full_topic(self.config.topic or topo.triggers[0].topic)
        events = mixed_events(self.config, ctx.seed + ctx.trial)
        producer = fabric.session(topic.split(".", 1)[0]).producer(value_format="json")
        raw = fabric.session(topic.split(".", 1)[0]).producer()
        # Latency is measured from emission to handling, so the groups settle first (and the
        # producers get their idempotent producer ids meanwhile).
        ctx.log_metric("trigger_join_s", _wait_joined(triggers, topo, self.config.drain_timeout_s))
        expected_matches = 0
        for trigger in triggers:
            if topo.full_topic(trigger.spec.topic) == topic:
                match = compile_filter(trigger.spec.filter)
                expected_matches += sum(
                    1
                    for e in events
                    if isinstance(e, dict) and match({"topic": topic, "value": e, "key": None})
                )
        with ctx.progress.bar("emitting and handling events", len(events) * len(triggers)) as bar:
            for event in events:
                if isinstance(event, bytes):
                    raw.produce(topic, event)
                else:
                    producer.produce(topic, event, key=str(event["id"]))
            producer.flush()
            raw.flush()
            deadline = time.monotonic() + self.config.drain_timeout_s
            watched = [t for t in triggers if topo.full_topic(t.spec.topic) == topic]
            while time.monotonic() < deadline:
                seen = sum(t.stats.received + t.stats.malformed for t in watched)
                bar.update(seen)
                if seen >= len(events) * len(watched) or any(t.error for t in triggers):
                    break
                time.sleep(0.05)
            for trigger in triggers:
                trigger.stop()
        stats = [t.stats for t in triggers]
        latencies = [ms for s in stats for ms in s.latencies_ms]
        ctx.log_metrics(
            {
                "events_emitted": len(events),
                "events_matched": sum(s.matched for s in stats),
                "events_matched_expected": expected_matches,
                "events_handled": sum(s.handled for s in stats),
                "handler_failures": sum(s.handler_failures for s in stats),
                "handler_retries": sum(s.retries for s in stats),
                "dead_lettered": sum(s.dead_lettered + s.malformed for s in stats),
                "malformed_events": sum(s.malformed for s in stats),
                "trigger_latency_p50_ms": float(np.percentile(latencies, 50)) if latencies else 0.0,
                "trigger_latency_p99_ms": float(np.percentile(latencies, 99)) if latencies else 0.0,
            }
        )
        ctx.write_records(
            "triggers",
            (
                {"trigger": t.spec.name, "dead_letter_topic": t.dead_letter_topic, **vars(t.stats)}
                | {"latencies_ms": len(t.stats.latencies_ms)}
                for t in triggers
            ),
        )


def _wait_joined(triggers: list[Trigger], topo: EventsConfig, timeout_s: float) -> float:
    """Wait until every trigger's consumer holds all partitions of its topic; the seconds."""
    began = time.monotonic()
    partitions = [topo.declared()[topo.full_topic(t.spec.topic)].partitions for t in triggers]
    while any(len(t.consumer.assigned) < n for t, n in zip(triggers, partitions, strict=True)):
        if any(t.error for t in triggers):
            break  # raised when the trigger stops
        if time.monotonic() - began > timeout_s:
            raise EventsError(
                f"the triggers' consumer groups did not settle within {timeout_s:g} s"
            )
        time.sleep(0.02)
    return time.monotonic() - began
