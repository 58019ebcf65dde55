"""The ``events`` group: Octopus's multi-tenant Kafka event fabric (embedded broker or any cluster).

``protocol.py`` holds what ``build()`` returns (an :class:`EventFabric`) and the errors; each
option (``embedded``, ``kafka``) has its module; modules starting with ``_`` are internals. The
config base, :class:`EventsConfig`, lives in ``topology.py`` beside the topics, grants and
triggers it declares (their checks import the protocol's errors, so the protocol cannot import
them back). ``fabric.py`` is the fabric over Kafka (``KafkaEventFabric``) both options build.
"""

from components.events.protocol import (
    Access,
    BrokerUnreachable,
    Event,
    EventFabric,
    EventsError,
    TopicAccessDenied,
    TopicError,
    TopicInfo,
)
from components.events.topology import EventsConfig

__all__ = [
    "Access",
    "BrokerUnreachable",
    "Event",
    "EventFabric",
    "EventsConfig",
    "EventsError",
    "TopicAccessDenied",
    "TopicError",
    "TopicInfo",
]
