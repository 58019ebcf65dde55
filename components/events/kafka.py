"""``events=kafka``: any Kafka cluster by its bootstrap servers.

librdkafka settings pass through ``client_settings`` (security protocol, SASL, TLS), so this
is how a recipe moves from the embedded broker to a real multi-node cluster.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from components.events.topology import EventsConfig, Scalar


class KafkaEventsConfig(EventsConfig):
    """A running Kafka cluster."""

    kind: Literal["kafka"] = "kafka"
    bootstrap_servers: str = Field(
        pattern=r"^[^\s,:]+:\d{1,5}(,[^\s,:]+:\d{1,5})*$",
        description="host:port[,host:port...] of the cluster",
    )
    mirror_acls: bool = Field(
        False, description="also write grants as Kafka ACLs (needs a broker authorizer)"
    )
    principal_settings: dict[str, dict[str, Scalar]] = Field(
        default_factory=dict,
        description="per principal, librdkafka settings of its clients (SASL credentials)",
    )

    def build(self) -> Any:
        """An unopened :class:`~components.events.fabric.KafkaEventFabric` on the cluster."""
        from components.events.fabric import KafkaEventFabric

        return KafkaEventFabric(
            self,
            bootstrap=self.bootstrap_servers,
            mirror_acls=self.mirror_acls,
            principal_settings=self.principal_settings,
        )
