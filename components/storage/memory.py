"""``storage=memory``: fsspec in-memory filesystems, one per container (tests, baselines)."""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from pydantic import Field

from components.storage._network import ContainerNetwork, open_network
from components.storage.container import ContainerSpec, LinkSpec
from components.storage.protocol import StorageConfig


class MemoryStorageConfig(StorageConfig):
    """fsspec in-memory filesystems, one per container (fastest; for tests and baselines)."""

    kind: Literal["memory"] = "memory"
    places_at_sites: ClassVar[bool] = True
    containers: int = Field(6, ge=1, le=256, description="number of containers")
    capacity_mb: float = Field(4096.0, gt=0, description="declared capacity per container, MB")
    link: LinkSpec | None = Field(None, description="emulated link in front of each container")

    def container_count(self) -> int:
        """How many containers there are."""
        return self.containers

    def container_specs(self) -> tuple[list[ContainerSpec], list[str]]:
        """``memory://loom-<run>/c<i>`` for each container."""
        run = uuid.uuid4().hex[:8]
        specs = [
            ContainerSpec(
                url=f"memory://loom-{run}/c{i}",
                name=name,
                capacity_mb=self.capacity_mb,
                afr_pct=self.afr_pct,
                link=link,
            )
            for i, (name, link) in enumerate(self.container_slots("memory"))
        ]
        return specs, []

    def shared_between_processes(self) -> bool:
        """No: each process has its own in-memory filesystem."""
        return False

    def build(self) -> ContainerNetwork:
        """The network (opened by the engine as a context manager)."""
        return open_network(self)
