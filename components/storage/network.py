"""The ``storage`` group: which data containers form the network, and how objects are cut.

Every option builds a :class:`StorageNetwork` (opened containers plus the fabric settings);
a scenario joins it with the ``coding`` and ``placement`` components into a
:class:`~components.storage.fabric.Fabric` whose catalog lives in the trial's folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from pydantic import Field, SecretStr, model_validator

from components.base import ComponentConfig
from components.coding.protocol import Coder
from components.placement.protocol import Placer
from components.storage.container import MB, ContainerSpec, DataContainer, LinkSpec
from components.storage.fabric import Fabric

DEFAULT_TENANT = "loom"


class StorageNetwork:
    """Opened data containers and the settings every fabric over them uses."""

    def __init__(
        self,
        specs: Sequence[ContainerSpec],
        *,
        segment_size: int,
        parallelism: int,
        tenants: dict[str, str],
        cleanup: Sequence[str] = (),
    ) -> None:
        self.specs = list(specs)
        self.segment_size = segment_size
        self.parallelism = parallelism
        self.tenants = tenants
        self.containers: list[DataContainer] = []
        self._cleanup = list(cleanup)

    def __enter__(self) -> Self:
        try:
            for node_id, spec in enumerate(self.specs):
                self.containers.append(DataContainer(spec, node_id).open())
        except BaseException:
            self._remove_temporary()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for container in self.containers:
            if container.spec.url.startswith("memory://"):
                container.fs.rm(container.root, recursive=True)
        self._remove_temporary()

    def _remove_temporary(self) -> None:
        for folder in self._cleanup:
            shutil.rmtree(folder, ignore_errors=True)

    def fabric(self, coder: Coder, placer: Placer, catalog_path: Path) -> Fabric:
        """A fabric over these containers with its catalog at ``catalog_path``."""
        for container in self.containers:
            container.bring_up()
        return Fabric(
            self.containers,
            coder,
            placer,
            catalog_path,
            segment_size=self.segment_size,
            parallelism=self.parallelism,
            tenants=self.tenants,
        )


class StorageConfig(ComponentConfig):
    """Settings shared by every storage option."""

    segment_size_mb: float = Field(8.0, gt=0, le=1024, description="bytes per segment, MB")
    parallelism: int = Field(4, ge=1, le=64, description="segments in flight per put/get")
    tenants: dict[str, SecretStr] = Field(
        default_factory=lambda: {DEFAULT_TENANT: SecretStr("loom-dev-token")},
        description="tenant → token (LOOM_TOKEN_<TENANT> in the environment overrides)",
    )

    def container_specs(self) -> tuple[list[ContainerSpec], list[str]]:
        """The containers, and temporary folders to remove at the end."""
        raise NotImplementedError

    def build(self) -> StorageNetwork:
        """The network (opened by the engine as a context manager)."""
        specs, cleanup = self.container_specs()
        tokens = {
            name: os.environ.get(f"LOOM_TOKEN_{name.upper()}", token.get_secret_value())
            for name, token in self.tenants.items()
        }
        return StorageNetwork(
            specs,
            segment_size=int(self.segment_size_mb * 2**20),
            parallelism=self.parallelism,
            tenants=tokens,
            cleanup=cleanup,
        )


class LocalStorageConfig(StorageConfig):
    """Directories on this machine, one per container (default: a temporary folder)."""

    kind: Literal["local"] = "local"
    containers: int = Field(6, ge=1, le=256, description="number of containers")
    capacity_mb: float = Field(4096.0, gt=0, description="declared capacity per container, MB")
    root: str | None = Field(None, description="parent folder (default: temporary, removed)")
    link: LinkSpec | None = Field(None, description="emulated link in front of each container")

    def container_specs(self) -> tuple[list[ContainerSpec], list[str]]:
        """``<root>/c<i>`` for each container."""
        cleanup: list[str] = []
        if self.root is None:
            root = tempfile.mkdtemp(prefix="loom-storage-")
            cleanup.append(root)
        else:
            root = str(Path(self.root).resolve())
        specs = [
            ContainerSpec(
                url=f"file://{root}/c{i}", name=f"local-c{i}", capacity_mb=self.capacity_mb,
                link=self.link,
            )
            for i in range(self.containers)
        ]  # fmt: skip
        return specs, cleanup


class MemoryStorageConfig(StorageConfig):
    """fsspec in-memory filesystems, one per container (fastest; for tests and baselines)."""

    kind: Literal["memory"] = "memory"
    containers: int = Field(6, ge=1, le=256, description="number of containers")
    capacity_mb: float = Field(4096.0, gt=0, description="declared capacity per container, MB")
    link: LinkSpec | None = Field(None, description="emulated link in front of each container")

    def container_specs(self) -> tuple[list[ContainerSpec], list[str]]:
        """``memory://loom-<run>/c<i>`` for each container."""
        run = uuid.uuid4().hex[:8]
        specs = [
            ContainerSpec(
                url=f"memory://loom-{run}/c{i}", name=f"memory-c{i}",
                capacity_mb=self.capacity_mb, link=self.link,
            )
            for i in range(self.containers)
        ]  # fmt: skip
        return specs, []


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

    def container_specs(self) -> tuple[list[ContainerSpec], list[str]]:
        """``s3://<bucket>/<prefix>/c<i>`` for each container."""
        specs = [
            ContainerSpec(
                url=f"s3://{self.bucket}/{self.prefix}/c{i}", name=f"s3-c{i}",
                capacity_mb=self.capacity_mb, options=self.options(),
            )
            for i in range(self.containers)
        ]  # fmt: skip
        return specs, []


class MixedStorageConfig(StorageConfig):
    """Any containers, each declared with its URL, capacity, options and optional link."""

    kind: Literal["mixed"] = "mixed"
    containers: list[ContainerSpec] = Field(
        default_factory=lambda: [
            ContainerSpec(url="memory://loom-mixed/fast", name="memory"),
            ContainerSpec(
                url="memory://loom-mixed/remote",
                name="remote",
                link=LinkSpec(bandwidth_mb_s=100, latency_ms=5),
            ),
        ],
        description="list of {url, name, capacity_mb, options, link, afr_pct}",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        names = [c.name or c.url for c in self.containers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"container names must be unique; repeated: {duplicates}")
        if not self.containers:
            raise ValueError("at least one container is needed")
        return self

    def container_specs(self) -> tuple[list[ContainerSpec], list[str]]:
        """The declared containers (``file://`` folders are created, never removed)."""
        return list(self.containers), []


__all__ = ["MB", "StorageNetwork"]
