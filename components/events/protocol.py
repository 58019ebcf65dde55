"""The ``events`` area: errors, the event record, grants and the :class:`EventFabric` protocol."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


class EventsError(RuntimeError):
    """Base of event-fabric failures; the message is meant for people."""


class BrokerUnreachable(EventsError):
    """No Kafka broker answered within the configured time."""


class TopicAccessDenied(EventsError, PermissionError):
    """A principal without the needed grant, or an unknown token."""


class TopicError(EventsError, ValueError):
    """A topic that does not exist, already exists, or has an invalid name."""


class Access(enum.Flag):
    """What a grant allows on one topic."""

    NONE = 0
    READ = enum.auto()
    WRITE = enum.auto()
    READ_WRITE = READ | WRITE

    @classmethod
    def of(cls, *, read: bool, write: bool) -> Access:
        """The flag for a read and/or write grant."""
        return (cls.READ if read else cls.NONE) | (cls.WRITE if write else cls.NONE)

    @property
    def label(self) -> str:
        """``read``, ``write``, ``read+write`` or ``none``."""
        parts = [
            name for flag, name in ((Access.READ, "read"), (Access.WRITE, "write")) if flag in self
        ]
        return "+".join(parts) or "none"


class Event:
    """One consumed event: the Kafka message plus its decoded value.

    A thin wrapper, so that consuming through the fabric costs little more than consuming
    with the bare client; the message's fields are read on access.

    Attributes:
        message: The confluent-kafka message it came from.
        value: Decoded value: bytes, or the parsed JSON document.

    """

    __slots__ = ("message", "value")

    def __init__(self, message: Any, value: Any) -> None:
        self.message = message
        self.value = value

    @property
    def topic(self) -> str:
        """Full topic name (``<namespace>.<topic>``)."""
        return str(self.message.topic())

    @property
    def partition(self) -> int:
        """Partition it was read from."""
        return int(self.message.partition())

    @property
    def offset(self) -> int:
        """Its offset in that partition."""
        return int(self.message.offset())

    @property
    def key(self) -> bytes | None:
        """Key bytes, or None."""
        key: bytes | None = self.message.key()
        return key

    @property
    def headers(self) -> dict[str, bytes]:
        """Header name → bytes value."""
        return {k: v or b"" for k, v in self.message.headers() or ()}

    @property
    def timestamp_ms(self) -> int:
        """Kafka timestamp (the producer's create time) in epoch milliseconds."""
        return int(self.message.timestamp()[1])

    def as_record(self) -> dict[str, Any]:
        """The event as plain data, as trigger filters and handlers see it."""
        key = self.key
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "key": key.decode("utf-8", "replace") if key is not None else None,
            "value": self.value,
            "headers": {k: v.decode("utf-8", "replace") for k, v in self.headers.items()},
            "timestamp": self.timestamp_ms,
        }

    def __repr__(self) -> str:
        return f"Event({self.topic}[{self.partition}]@{self.offset}, value={self.value!r:.60})"


@dataclass(frozen=True)
class TopicInfo:
    """What ``describe_topic`` reports.

    Attributes:
        name: Full topic name.
        owner: The namespace (principal) that owns it.
        partitions: Number of partitions.
        retention_ms: Retention in milliseconds (-1: forever), as the broker reports it.
        grants: Principal → access, the owner excluded.

    """

    name: str
    owner: str
    partitions: int
    retention_ms: int | None
    grants: Mapping[str, Access]


@runtime_checkable
class EventFabric(Protocol):
    """What the engine opens for the ``events`` group: a broker connection plus access control.

    Principals log in with a token and get a session (see ``components.events.session``)
    through which every topic, grant, producer, consumer and trigger is used.
    """

    bootstrap_servers: str

    def add_principal(self, name: str) -> str:
        """Register a principal (its namespace is its name) and return its token."""

    def login(self, token: str) -> Any:
        """The session of the principal that owns ``token``."""

    def token_of(self, name: str) -> str:
        """The token of a principal the topology declared (for scenarios and tests)."""

    def restart_broker(self, *, crash: bool = False) -> float:
        """Stop (``crash``: kill) the broker process and start it again; seconds it was down."""
