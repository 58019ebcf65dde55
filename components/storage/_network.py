"""The network every storage option builds: opened containers and the fabric settings."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from components.coding.protocol import Coder
from components.faults.protocol import Fault, Injected
from components.placement.protocol import Placer
from components.storage.container import (
    ContainerSpec,
    DataContainer,
    container_fault_targets,
    inject_container_fault,
)
from components.storage.fabric import StorageFabric
from components.storage.protocol import StorageConfig


class ContainerNetwork:
    """Opened data containers and the settings every fabric over them uses."""

    def __init__(
        self,
        specs: Sequence[ContainerSpec],
        *,
        segment_size: int,
        parallelism: int,
        tenants: dict[str, str],
        share_containers: bool = False,
        cleanup: Sequence[str] = (),
    ) -> None:
        self.specs = list(specs)
        self.segment_size = segment_size
        self.parallelism = parallelism
        self.tenants = tenants
        self.share_containers = share_containers
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

    # -- faults ---------------------------------------------------------------------------------

    def fault_targets(self, kind: str) -> list[str]:
        """Container names for the container kinds; those behind a link for the link kinds."""
        return container_fault_targets(self.containers, kind)

    def inject(self, kind: str, targets: Sequence[str], fault: Fault) -> Injected:
        """See :func:`~components.storage.container.inject_container_fault`."""
        return inject_container_fault(self.containers, kind, targets, fault)

    def _remove_temporary(self) -> None:
        for folder in self._cleanup:
            shutil.rmtree(folder, ignore_errors=True)

    def fabric(self, coder: Coder, placer: Placer, catalog_path: Path) -> StorageFabric:
        """A fabric over these containers with its catalog at ``catalog_path``."""
        for container in self.containers:
            container.bring_up()
        return StorageFabric(
            self.containers,
            coder,
            placer,
            catalog_path,
            segment_size=self.segment_size,
            parallelism=self.parallelism,
            tenants=self.tenants,
            share_containers=self.share_containers,
        )


def open_network(config: StorageConfig) -> ContainerNetwork:
    """The network of a storage option's containers (``LOOM_TOKEN_<TENANT>`` overrides)."""
    specs, cleanup = config.container_specs()
    tokens = {
        name: os.environ.get(f"LOOM_TOKEN_{name.upper()}", token.get_secret_value())
        for name, token in config.tenants.items()
    }
    return ContainerNetwork(
        specs,
        segment_size=int(config.segment_size_mb * 2**20),
        parallelism=config.parallelism,
        tenants=tokens,
        share_containers=config.share_containers,
        cleanup=cleanup,
    )
