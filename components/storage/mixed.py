"""``storage=mixed``: any containers, each declared with its URL, capacity and link."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from components.storage._network import ContainerNetwork, open_network
from components.storage.container import ContainerSpec, LinkSpec
from components.storage.protocol import StorageConfig


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

    def container_count(self) -> int:
        """How many containers there are."""
        return len(self.containers)

    def container_specs(self) -> tuple[list[ContainerSpec], list[str]]:
        """The declared containers (``file://`` folders are created, never removed)."""
        if self.afr_pct is None:
            return list(self.containers), []
        return [
            spec if spec.afr_pct is not None else spec.model_copy(update={"afr_pct": self.afr_pct})
            for spec in self.containers
        ], []

    def declares_failure_rates(self) -> bool:
        """When every declared container has ``afr_pct``."""
        return self.afr_pct is not None or all(s.afr_pct is not None for s in self.containers)

    def shared_between_processes(self) -> bool:
        """Unless a container is ``memory://`` (each process has its own)."""
        return not any(spec.url.startswith("memory://") for spec in self.containers)

    def build(self) -> ContainerNetwork:
        """The network (opened by the engine as a context manager)."""
        return open_network(self)
