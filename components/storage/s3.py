"""``storage=s3``: prefixes of an S3 bucket (any S3 endpoint: AWS, MinIO, Ceph RGW, moto)."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, SecretStr

from components.storage._network import ContainerNetwork, open_network
from components.storage.container import ContainerSpec
from components.storage.protocol import StorageConfig


class S3StorageConfig(StorageConfig):
    """Prefixes of an S3 bucket (any S3 endpoint: AWS, MinIO, Ceph RGW, moto)."""

    kind: Literal["s3"] = "s3"
    bucket: str = Field("loom", min_length=3, max_length=63, description="bucket (created if new)")
    prefix: str = Field("containers", description="key prefix of the containers")
    containers: int = Field(6, ge=1, le=256, description="number of containers (prefixes)")
    capacity_mb: float = Field(4096.0, gt=0, description="declared capacity per container, MB")
    endpoint_url: str | None = Field(
        None, description="S3 endpoint (default: AWS_ENDPOINT_URL or AWS itself)"
    )
    key: SecretStr | None = Field(None, description="access key (default: AWS_ACCESS_KEY_ID)")
    secret: SecretStr | None = Field(None, description="secret (default: AWS_SECRET_ACCESS_KEY)")
    connect_timeout_s: float = Field(5.0, gt=0, le=300, description="give up connecting after")

    def options(self) -> dict[str, Any]:
        """s3fs storage options: endpoint, credentials, short timeouts and few retries."""
        options: dict[str, Any] = {
            "config_kwargs": {
                "connect_timeout": self.connect_timeout_s,
                "read_timeout": max(30.0, self.connect_timeout_s),
                "retries": {"max_attempts": 2, "mode": "standard"},
            },
        }
        endpoint = self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            options["endpoint_url"] = endpoint
        if self.key is not None:
            options["key"] = self.key.get_secret_value()
        if self.secret is not None:
            options["secret"] = self.secret.get_secret_value()
        return options

    def container_count(self) -> int:
        """How many containers there are."""
        return self.containers

    def container_specs(self) -> tuple[list[ContainerSpec], list[str]]:
        """``s3://<bucket>/<prefix>/c<i>`` for each container."""
        specs = [
            ContainerSpec(
                url=f"s3://{self.bucket}/{self.prefix}/c{i}",
                name=f"s3-c{i}",
                capacity_mb=self.capacity_mb,
                afr_pct=self.afr_pct,
                options=self.options(),
            )
            for i in range(self.containers)
        ]
        return specs, []

    def build(self) -> ContainerNetwork:
        """The network (opened by the engine as a context manager)."""
        return open_network(self)
