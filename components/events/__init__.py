"""The ``events`` group: Octopus's multi-tenant Kafka event fabric (embedded broker or any cluster).

``protocol.py`` holds what ``build()`` returns, the config base and the errors; each option
has its module; modules starting with ``_`` are internals.
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

__all__ = [
    "Access",
    "BrokerUnreachable",
    "Event",
    "EventFabric",
    "EventsError",
    "TopicAccessDenied",
    "TopicError",
    "TopicInfo",
]
