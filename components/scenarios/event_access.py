"""``scenario=event_access``: grants are enforced on one topic, step by step.

A principal is refused without a grant, served with one and refused again after the grant
is revoked; an outsider is refused throughout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar, Literal

from pydantic import Field

from components.base import ComponentConfig, RunContext, ScenarioConfig
from components.events.fabric import fabric_of
from components.events.protocol import EventsError, TopicAccessDenied


class EventAccessConfig(ScenarioConfig):
    """Check every access rule on one topic, through the fabric's own clients."""

    kind: Literal["event_access"] = "event_access"
    requires: ClassVar[tuple[str, ...]] = ("events",)
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "checks_passed",
        "unexpected_outcomes",
        "events_read_with_grant",
    )
    topic: str = Field("orders", description="the owner's topic the checks run on")
    subject: str = Field("bob", description="principal that gets, uses and loses a grant")
    outsider: str = Field("eve", description="principal that never gets a grant")
    events: int = Field(100, ge=1, le=1_000_000, description="events written with the grant")

    def build(self) -> EventAccess:
        """The scenario."""
        return EventAccess(self)

    def check_components(self, groups: Mapping[str, ComponentConfig]) -> list[str]:
        """The subject, the outsider and the topic's owner are principals of the fabric."""
        events = groups["events"]
        declared = list(getattr(events, "principals", ()))
        missing = [name for name in (self.subject, self.outsider) if name not in declared]
        owners = [t.owner for t in getattr(events, "topics", ()) if t.name == self.topic]
        owner = (owners[0] if owners else None) or (declared[0] if declared else None)
        if not missing and owner not in (None, self.subject, self.outsider):
            return []
        if missing:
            problem = f"scenario.subject/outsider {', '.join(missing)} not in events.principals"
        else:
            problem = f"scenario.topic={self.topic} needs an owner other than the subject"
        return [
            f"{problem} ({', '.join(declared)}): the checks need an owner, a subject and an "
            "outsider; run recipe=octopus/acl, or declare them (events.principals listing "
            "alice, bob and eve, and events.topics with the topic owned by alice)"
        ]


class EventAccess:
    """See :class:`EventAccessConfig`."""

    def __init__(self, config: EventAccessConfig) -> None:
        self.config = config

    def run(self, ctx: RunContext) -> None:
        """Run the checks; every outcome is a row of ``access.jsonl``."""
        fabric = fabric_of(ctx)
        cfg = self.config
        topic = fabric.config.full_topic(cfg.topic)
        owner = fabric.session(topic.split(".", 1)[0])
        subject = fabric.session(cfg.subject)
        outsider = fabric.session(cfg.outsider)
        rows: list[dict[str, object]] = []

        def expect(step: str, allowed: bool, action: Callable[[], object]) -> None:
            try:
                action()
                outcome = True
                detail = "ok"
            except TopicAccessDenied as exc:
                outcome = False
                detail = str(exc)
            rows.append({"step": step, "expected": allowed, "allowed": outcome, "detail": detail})

        group = f"access-{ctx.trial}"
        owner.revoke(topic, cfg.subject)
        producer = subject.producer()
        expect("subject produces without a grant", False, lambda: producer.produce(topic, b"x"))
        expect(
            "subject consumes without a grant",
            False,
            lambda: subject.consumer([topic], group=group),
        )
        owner.grant(topic, cfg.subject, read=True, write=True)
        read: list[int] = []

        def write_then_read() -> None:
            for i in range(cfg.events):
                producer.produce(topic, f"{ctx.trial}:{i}".encode())
            producer.flush()
            consumer = subject.consumer([topic], group=group)
            mine = {f"{ctx.trial}:{i}".encode() for i in range(cfg.events)}
            got: set[bytes] = set()
            for _ in range(600):
                got |= {v for v in consumer.poll(1000, 0.1).values() if v in mine}
                if len(got) == len(mine):
                    break
            consumer.commit()
            read.append(len(got))
            self.consumer = consumer

        expect("subject produces and consumes with a grant", True, write_then_read)
        expect("outsider produces", False, lambda: outsider.producer().produce(topic, b"x"))
        expect("outsider consumes", False, lambda: outsider.consumer([topic], group=group))
        owner.revoke(topic, cfg.subject, read=True, write=True)
        expect("subject produces after revoke", False, lambda: producer.produce(topic, b"x"))
        if read:
            expect("subject polls after revoke", False, lambda: self.consumer.poll(1, 0.1))
            self.consumer.close()
        expect("subject deletes the owner's topic", False, lambda: subject.delete_topic(topic))
        unexpected = [r for r in rows if r["expected"] != r["allowed"]]
        ctx.write_records("access", rows)
        ctx.log_metrics(
            {
                "checks_passed": len(rows) - len(unexpected),
                "unexpected_outcomes": len(unexpected),
                "events_read_with_grant": read[0] if read else 0,
                "events_expected_with_grant": cfg.events,
            }
        )
        if not read:
            raise EventsError("the subject could not read with a grant: " + str(rows[-1]))
