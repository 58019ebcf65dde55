"""Mirror the fabric's grants as Kafka ACLs, for clusters that run an authorizer.

With ``events=kafka events.mirror_acls=true`` every grant and revoke is also written as
``User:<principal>`` ACLs (READ/WRITE plus DESCRIBE on the topic; READ on the principal's
``<namespace>.*`` consumer groups), and each principal's clients authenticate with the
settings in ``events.principal_settings`` (e.g. SASL username and password), so the broker
enforces the same rules the fabric checks. Brokers without an authorizer (the embedded
tansu broker) get no mirroring: the fabric's own checks are the enforcement there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from components.events.protocol import Access, EventsError


def _operations(access: Access) -> list[Any]:
    ops: list[Any] = []
    if Access.READ in access:
        ops.append(AclOperation.READ)
    if Access.WRITE in access:
        ops.append(AclOperation.WRITE)
    if ops:
        ops.append(AclOperation.DESCRIBE)
    return ops


class AclMirror:
    """Writes grants as ACL bindings with the admin client."""

    def __init__(self, admin: AdminClient, timeout_s: float) -> None:
        self.admin = admin
        self.timeout_s = timeout_s

    def _bindings(self, topic: str, principal: str, access: Access) -> list[AclBinding]:
        user = f"User:{principal}"
        bindings = [
            AclBinding(
                ResourceType.TOPIC,
                topic,
                ResourcePatternType.LITERAL,
                user,
                "*",
                op,
                AclPermissionType.ALLOW,
            )
            for op in _operations(access)
        ]
        if Access.READ in access:
            bindings.append(
                AclBinding(
                    ResourceType.GROUP,
                    f"{principal}.",
                    ResourcePatternType.PREFIXED,
                    user,
                    "*",
                    AclOperation.READ,
                    AclPermissionType.ALLOW,
                )
            )
        return bindings

    def _wait(self, futures: Mapping[Any, Any], action: str) -> None:
        for future in futures.values():
            try:
                future.result(timeout=self.timeout_s)
            except KafkaException as exc:
                raise EventsError(
                    f"{action} Kafka ACLs failed ({exc.args[0].str()}); does the cluster run "
                    "an authorizer? Set events.mirror_acls=false if not"
                ) from None

    def grant(self, topic: str, principal: str, access: Access) -> None:
        """Allow what ``access`` names."""
        self._wait(self.admin.create_acls(self._bindings(topic, principal, access)), "creating")

    def revoke(self, topic: str, principal: str, removed: Access) -> None:
        """Delete the bindings of ``removed`` access."""
        filters = [
            AclBindingFilter(
                b.restype,
                b.name,
                b.resource_pattern_type,
                b.principal,
                b.host,
                b.operation,
                b.permission_type,
            )
            for b in self._bindings(topic, principal, removed)
            if b.restype == ResourceType.TOPIC
        ]
        self._wait(self.admin.delete_acls(filters), "deleting")

    def forget(self, topic: str) -> None:
        """Delete every binding on a deleted topic."""
        pattern = AclBindingFilter(
            ResourceType.TOPIC,
            topic,
            ResourcePatternType.LITERAL,
            None,  # type: ignore[arg-type]  # None matches any principal and host
            None,  # type: ignore[arg-type]
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        self._wait(self.admin.delete_acls([pattern]), "deleting")
