"""What the storage scenarios share: their config base and one trial's put, get and checks."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import Field, model_validator

from components.base import ComponentConfig, RunContext, ScenarioConfig
from components.coding.protocol import Coder
from components.placement.protocol import Placer
from components.scenarios.storage_workload import (
    ObjectSpec,
    digest,
    timed_ops,
)
from components.storage.fabric import StorageFabric, TenantStore
from components.storage.protocol import StorageConfig, StorageNetwork

STORAGE_GROUPS = ("storage", "coding", "placement")


class StorageScenarioConfig(ScenarioConfig):
    """What both storage scenarios take: the objects, their sizes, concurrency and targets."""

    requires: ClassVar[tuple[str, ...]] = STORAGE_GROUPS
    objects: int = Field(8, ge=1, le=100_000, description="number of objects")
    object_size_mb: list[float] = Field(
        default_factory=lambda: [1.0],
        min_length=1,
        description="object sizes in MiB, cycled over the objects",
    )
    source_dir: str | None = Field(None, description="put these real files instead")
    concurrency: int = Field(2, ge=1, le=256, description="objects in flight")
    seed: int | None = Field(None, ge=0, description="object bytes seed (default: run seed)")
    reliability: list[float] = Field(
        default_factory=list,
        description="per-object durability targets, cycled over the objects (for placers "
        "that choose (n, k) per object, such as drex_lb)",
    )

    def check_components(self, groups: Mapping[str, ComponentConfig]) -> list[str]:
        """Every stripe fits on distinct containers (or the storage group lets them share)."""
        storage = groups["storage"]
        assert isinstance(storage, StorageConfig)
        return storage.fits_stripes(groups["coding"], groups["placement"])

    @model_validator(mode="after")
    def _sizes(self) -> Self:
        bad = [s for s in self.object_size_mb if not 0 <= s <= 65536]
        if bad:
            raise ValueError(f"object_size_mb values must be within 0..65536 MiB, got {bad}")
        off = [r for r in self.reliability if not 0 < r < 1]
        if off:
            raise ValueError(f"reliability targets must lie strictly between 0 and 1, got {off}")
        if self.source_dir is not None and not Path(self.source_dir).is_dir():
            raise ValueError(f"source_dir={self.source_dir!r} is not a readable folder")
        return self


def open_fabric(ctx: RunContext, name: str = "catalog") -> tuple[StorageNetwork, StorageFabric]:
    """The run's containers and a fabric over them with its coder and placer."""
    network = ctx.component("storage", StorageNetwork)  # type: ignore[type-abstract]
    coder = ctx.component("coding", Coder)  # type: ignore[type-abstract]
    placer = ctx.component("placement", Placer)  # type: ignore[type-abstract]
    return network, network.fabric(coder, placer, ctx.run_dir / f"{name}.sqlite")


def store_objects(
    ctx: RunContext, fabric: StorageFabric, objects: list[ObjectSpec], concurrency: int, label: str
) -> tuple[dict[str, str], list[Any], float]:
    """Put every object; return their hashes, records and wall time."""
    store = connect_tenant(fabric)
    hashes: dict[str, str] = {}

    def put(spec: ObjectSpec) -> None:
        data = spec.data()
        hashes[spec.key] = digest(data)
        store.put("bench", spec.key, data, reliability=spec.reliability)

    with ctx.progress.bar(f"trial {ctx.trial}: {label} put", len(objects)) as bar:
        records, wall = timed_ops("put", objects, put, concurrency, bar.update)
    return hashes, records, wall


def connect_tenant(fabric: StorageFabric) -> TenantStore:
    """Act as the first configured tenant."""
    tenant, token = next(iter(fabric.tenants.items()))
    return fabric.connect(tenant, token)


def read_back(
    ctx: RunContext,
    fabric: StorageFabric,
    objects: list[ObjectSpec],
    hashes: dict[str, str],
    concurrency: int,
    label: str,
) -> tuple[list[Any], float, int]:
    """Get every object and compare with what was put; records, wall, objects verified."""
    store = connect_tenant(fabric)
    verified = [0]

    def get(spec: ObjectSpec) -> None:
        data = store.get("bench", spec.key)
        if digest(data) != hashes.get(spec.key):
            raise ValueError(f"{spec.key}: read back different bytes")
        verified[0] += 1

    with ctx.progress.bar(f"trial {ctx.trial}: {label} get", len(objects)) as bar:
        records, wall = timed_ops("get", objects, get, concurrency, bar.update)
    return records, wall, verified[0]


def delete_all(fabric: StorageFabric, objects: list[ObjectSpec]) -> None:
    """Delete the workload's objects that were stored."""
    store = connect_tenant(fabric)
    for spec in objects:
        if store.exists("bench", spec.key):
            store.delete("bench", spec.key)


def balance(network: StorageNetwork, before: list[int]) -> tuple[int, float]:
    """Bytes added across containers and the stddev of their utilisation (used / capacity)."""
    added = sum(c.used - b for c, b in zip(network.containers, before, strict=True))
    usage = [c.used / c.capacity for c in network.containers]
    return added, statistics.pstdev(usage) if len(usage) > 1 else 0.0
