"""``storage=local``: directories on this machine, one per container."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from components.storage._network import ContainerNetwork, open_network
from components.storage.container import ContainerSpec, LinkSpec
from components.storage.protocol import StorageConfig


class LocalStorageConfig(StorageConfig):
    """Directories on this machine, one per container (default: a temporary folder)."""

    kind: Literal["local"] = "local"
    places_at_sites: ClassVar[bool] = True
    containers: int = Field(6, ge=1, le=256, description="number of containers")
    capacity_mb: float = Field(4096.0, gt=0, description="declared capacity per container, MB")
    root: str | None = Field(None, description="parent folder (default: temporary, removed)")
    link: LinkSpec | None = Field(None, description="emulated link in front of each container")

    def container_count(self) -> int:
        """How many containers there are."""
        return self.containers

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
                url=f"file://{root}/c{i}",
                name=name,
                capacity_mb=self.capacity_mb,
                afr_pct=self.afr_pct,
                link=link,
            )
            for i, (name, link) in enumerate(self.container_slots("local"))
        ]
        return specs, cleanup

    def build(self) -> ContainerNetwork:
        """The network (opened by the engine as a context manager)."""
        return open_network(self)
