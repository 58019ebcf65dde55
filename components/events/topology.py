"""Config models shared by every ``events`` option: client settings and the event topology.

The topology names principals, topics (owned by a principal, so named
``<owner>.<topic>``), grants, one group of producers, one group of consumers and triggers.
The fabric creates principals, topics and grants when it opens; scenarios run the rest.
"""

from __future__ import annotations

import importlib
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from components.base import ComponentConfig, LoomModel
from components.events._access import NAME
from components.events.filters import FilterError, compile_filter

Scalar = str | int | float | bool
NAME_PATTERN = NAME.pattern
TOPIC_PATTERN = r"^([A-Za-z0-9_-]{1,100}\.)?[A-Za-z0-9_-]{1,100}$"


class ProducerSettings(LoomModel):
    """How producers batch and acknowledge (librdkafka settings with Loom defaults)."""

    acks: Literal["all", "1", "0"] = Field("all", description="acknowledgements per batch")
    idempotent: bool = Field(True, description="no duplicates from producer retries")
    linger_ms: float = Field(5.0, ge=0, le=10_000, description="wait to fill a batch")
    batch_kb: int = Field(1024, ge=1, le=1_048_576, description="largest batch in KiB")
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field(
        "none", description="batch compression"
    )
    delivery_timeout_s: float = Field(
        60.0, gt=0, le=3600, description="give up on an unacknowledged event after this"
    )

    @field_validator("acks", mode="before")
    @classmethod
    def _acks_as_text(cls, value: Any) -> Any:
        # Hydra reads `acks=1` from the command line as a number.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _idempotence_needs_acks(self) -> Self:
        if self.idempotent and self.acks != "all":
            raise ValueError(
                f"acks={self.acks!r} is not allowed with idempotent=true; "
                "use acks=all or set idempotent=false"
            )
        return self

    def librdkafka(self) -> dict[str, Any]:
        """These settings under librdkafka's names."""
        return {
            "acks": self.acks,
            "enable.idempotence": self.idempotent,
            "linger.ms": self.linger_ms,
            "batch.size": self.batch_kb * 1024,
            "compression.type": self.compression,
            "message.timeout.ms": int(self.delivery_timeout_s * 1000),
            "delivery.report.only.error": True,
        }


class ConsumerSettings(LoomModel):
    """How consumers join groups and read (librdkafka settings with Loom defaults)."""

    session_timeout_ms: int = Field(
        6000, ge=500, le=300_000, description="a member silent this long leaves the group"
    )
    heartbeat_interval_ms: int = Field(500, ge=50, le=60_000, description="group heartbeats")
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        "earliest", description="where a new group starts reading"
    )
    max_poll_events: int = Field(1000, ge=1, le=100_000, description="events per poll")
    fetch_wait_max_ms: int = Field(
        10, ge=0, le=60_000, description="longest a fetch waits for data (latency bound)"
    )
    gap_wait_ms: int | None = Field(
        None,
        ge=0,
        le=600_000,
        description=(
            "re-read a partition whose offsets jump for up to this long; 0: off; "
            "null: on (5 s) with the embedded broker, off on a Kafka cluster"
        ),
    )

    @model_validator(mode="after")
    def _heartbeat_below_session(self) -> Self:
        if self.heartbeat_interval_ms * 3 > self.session_timeout_ms:
            raise ValueError(
                f"heartbeat_interval_ms={self.heartbeat_interval_ms} must be at most a third "
                f"of session_timeout_ms={self.session_timeout_ms}"
            )
        return self

    def librdkafka(self) -> dict[str, Any]:
        """These settings under librdkafka's names (offsets are stored and committed explicitly)."""
        return {
            "session.timeout.ms": self.session_timeout_ms,
            "heartbeat.interval.ms": self.heartbeat_interval_ms,
            "auto.offset.reset": self.auto_offset_reset,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,  # stored as returned: components.events.offsets
            "enable.partition.eof": False,
            "fetch.wait.max.ms": self.fetch_wait_max_ms,
        }


class TopicSpec(LoomModel):
    """A topic the fabric creates when it opens."""

    name: str = Field(pattern=NAME_PATTERN, description="short name within the owner's namespace")
    owner: str | None = Field(
        None, pattern=NAME_PATTERN, description="owning principal (default: the first)"
    )
    partitions: int = Field(1, ge=1, le=10_000, description="number of partitions")
    retention_ms: int | None = Field(None, ge=-1, description="retention (-1: forever)")


class GrantSpec(LoomModel):
    """Access of one principal to another principal's topic."""

    topic: str = Field(pattern=TOPIC_PATTERN, description="full topic name <owner>.<topic>")
    principal: str = Field(pattern=NAME_PATTERN, description="who gets access")
    read: bool = Field(True, description="may consume")
    write: bool = Field(False, description="may produce")


class ProducerSpec(LoomModel):
    """A group of identical producers."""

    topic: str = Field(pattern=TOPIC_PATTERN, description="topic (short names: the principal's)")
    principal: str | None = Field(None, pattern=NAME_PATTERN, description="default: the owner")
    count: int = Field(1, ge=1, le=64, description="producers, each in its own thread")
    events: int = Field(10_000, ge=1, le=100_000_000, description="events per producer")
    rate_per_s: float | None = Field(
        None, gt=0, description="events per second per producer (null: as fast as possible)"
    )
    event_size: int = Field(1024, ge=16, le=1_000_000, description="value bytes per event")
    keys: Literal["none", "uniform", "zipf"] = Field("uniform", description="key distribution")
    key_count: int = Field(64, ge=1, le=1_000_000, description="distinct keys")
    value_format: Literal["bytes", "json"] = Field("bytes", description="value encoding")


class ConsumerSpec(LoomModel):
    """A group of consumers sharing one consumer group."""

    topic: str = Field(pattern=TOPIC_PATTERN, description="topic (short names: the principal's)")
    principal: str | None = Field(None, pattern=NAME_PATTERN, description="default: the owner")
    count: int = Field(1, ge=1, le=64, description="consumers, each in its own thread")
    group: str = Field("loom", pattern=NAME_PATTERN, description="consumer group (namespaced)")


class TriggerSpec(LoomModel):
    """A handler bound to a topic, run on the executor for events that match a filter."""

    name: str = Field(pattern=NAME_PATTERN, description="trigger name (its consumer group)")
    topic: str = Field(pattern=TOPIC_PATTERN, description="topic it listens to")
    principal: str | None = Field(None, pattern=NAME_PATTERN, description="default: the owner")
    filter: list[dict[str, Any]] = Field(
        default_factory=list, description="Lambda-style filter patterns, any may match"
    )
    handler: str = Field(
        "components.events.handlers:count",
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="module:function called with (events, context, **handler_args)",
    )
    handler_args: dict[str, Any] = Field(default_factory=dict, description="keyword arguments")
    batch_size: int = Field(1, ge=1, le=10_000, description="events per handler call")
    concurrency: int = Field(1, ge=1, le=256, description="handler calls in flight")
    max_retries: int = Field(2, ge=0, le=100, description="retries of a failing batch")
    retry_backoff_s: float = Field(0.05, ge=0, le=60, description="first retry delay (doubles)")
    dead_letter_topic: str | None = Field(
        None, pattern=NAME_PATTERN, description="short name; default <topic>-dlq"
    )
    value_format: Literal["bytes", "json"] = Field("json", description="value encoding")

    @field_validator("filter", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _filter_and_handler(self) -> Self:
        try:
            compile_filter(self.filter)
        except FilterError as exc:
            raise ValueError(f"filter is malformed: {exc}") from None
        module, _, function = self.handler.partition(":")
        try:
            found = getattr(importlib.import_module(module), function, None)
        except ImportError as exc:
            raise ValueError(f"handler module {module!r} cannot be imported: {exc}") from None
        if not callable(found):
            raise ValueError(f"handler {self.handler!r}: {module} has no function {function!r}")
        return self


class EventsConfig(ComponentConfig):
    """Settings and topology every ``events`` option shares."""

    connect_timeout_s: float = Field(
        10.0, gt=0, le=600, description="fail if no broker answers within this"
    )
    client_settings: dict[str, Scalar] = Field(
        default_factory=dict, description="librdkafka settings for every client (SASL, TLS, ...)"
    )
    producer: ProducerSettings = Field(default_factory=ProducerSettings)
    consumer: ConsumerSettings = Field(default_factory=ConsumerSettings)
    principals: list[str] = Field(
        default_factory=lambda: ["loom"], min_length=1, description="principals (namespaces)"
    )
    topics: list[TopicSpec] = Field(default_factory=list, description="topics created at open")
    grants: list[GrantSpec] = Field(default_factory=list, description="grants made at open")
    producers: ProducerSpec | None = Field(None, description="the scenario's producers")
    consumers: ConsumerSpec | None = Field(None, description="the scenario's consumers")
    triggers: list[TriggerSpec] = Field(default_factory=list, description="the scenario's triggers")

    @field_validator("principals")
    @classmethod
    def _principal_names(cls, names: list[str]) -> list[str]:
        bad = [n for n in names if not NAME.match(n)]
        if bad:
            raise ValueError(f"principal names {bad} are invalid: use letters, digits, '_', '-'")
        if len(set(names)) != len(names):
            raise ValueError(f"principal names repeat: {names}")
        return names

    def owner(self, topic: TopicSpec) -> str:
        """The principal that owns ``topic``."""
        return topic.owner or self.principals[0]

    def full_topic(self, name: str) -> str:
        """``name`` as a full topic name: a short name is matched against the declared topics."""
        if "." in name:
            return name
        owners = [self.owner(t) for t in self.topics if t.name == name]
        return f"{owners[0] if owners else self.principals[0]}.{name}"

    def declared(self) -> dict[str, TopicSpec]:
        """Full name → spec of every declared topic."""
        return {f"{self.owner(t)}.{t.name}": t for t in self.topics}

    @model_validator(mode="after")
    def _references(self) -> Self:
        known = set(self.principals)
        topics = self.declared()
        problems: list[str] = []

        def principal(where: str, name: str | None) -> None:
            if name is not None and name not in known:
                problems.append(f"{where}={name!r} is not a declared principal ({sorted(known)})")

        def topic(where: str, name: str) -> None:
            if self.full_topic(name) not in topics:
                declared = ", ".join(sorted(topics)) or "none"
                problems.append(f"{where}={name!r} is not a declared topic (declared: {declared})")

        for i, t in enumerate(self.topics):
            principal(f"topics[{i}].owner", t.owner)
        if len(topics) != len(self.topics):
            problems.append("topics repeat a name within one owner")
        for i, g in enumerate(self.grants):
            principal(f"grants[{i}].principal", g.principal)
            topic(f"grants[{i}].topic", g.topic)
        for where, spec in (("producers", self.producers), ("consumers", self.consumers)):
            if spec is not None:
                principal(f"{where}.principal", spec.principal)
                topic(f"{where}.topic", spec.topic)
        for i, trigger in enumerate(self.triggers):
            principal(f"triggers[{i}].principal", trigger.principal)
            topic(f"triggers[{i}].topic", trigger.topic)
        if len({t.name for t in self.triggers}) != len(self.triggers):
            problems.append("trigger names repeat")
        if problems:
            raise ValueError("; ".join(problems))
        return self
