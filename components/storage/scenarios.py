"""Storage experiments: a put/get benchmark (with peers) and a fault drill."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, model_validator

from components.base import RunContext, Scenario, ScenarioConfig
from components.coding.base import Coder
from components.coding.none import NoCoder
from components.placement.base import Placer
from components.storage.fabric import Fabric, TenantStore
from components.storage.network import StorageNetwork
from components.storage.workload import (
    ObjectSpec,
    chunked,
    digest,
    make_objects,
    throughput_metrics,
    timed_ops,
)

STORAGE_GROUPS = ("storage", "coding", "placement")


class _StorageScenarioConfig(ScenarioConfig):
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


def _open(ctx: RunContext, name: str = "catalog") -> tuple[StorageNetwork, Fabric]:
    network = ctx.component("storage", StorageNetwork)
    coder = ctx.component("coding", Coder)  # type: ignore[type-abstract]
    placer = ctx.component("placement", Placer)  # type: ignore[type-abstract]
    return network, network.fabric(coder, placer, ctx.run_dir / f"{name}.sqlite")


def _store_objects(
    ctx: RunContext, fabric: Fabric, objects: list[ObjectSpec], concurrency: int, label: str
) -> tuple[dict[str, str], list[Any], float]:
    """Put every object; return their hashes, records and wall time."""
    store = _connect(fabric)
    hashes: dict[str, str] = {}

    def put(spec: ObjectSpec) -> None:
        data = spec.data()
        hashes[spec.key] = digest(data)
        store.put("bench", spec.key, data, reliability=spec.reliability)

    with ctx.progress.bar(f"trial {ctx.trial}: {label} put", len(objects)) as bar:
        records, wall = timed_ops("put", objects, put, concurrency, bar.update)
    return hashes, records, wall


def _connect(fabric: Fabric) -> TenantStore:
    """Act as the first configured tenant."""
    tenant, token = next(iter(fabric.tenants.items()))
    return fabric.connect(tenant, token)


def _read_back(
    ctx: RunContext,
    fabric: Fabric,
    objects: list[ObjectSpec],
    hashes: dict[str, str],
    concurrency: int,
    label: str,
) -> tuple[list[Any], float, int]:
    """Get every object and compare with what was put; records, wall, objects verified."""
    store = _connect(fabric)
    verified = [0]

    def get(spec: ObjectSpec) -> None:
        data = store.get("bench", spec.key)
        if digest(data) != hashes.get(spec.key):
            raise ValueError(f"{spec.key}: read back different bytes")
        verified[0] += 1

    with ctx.progress.bar(f"trial {ctx.trial}: {label} get", len(objects)) as bar:
        records, wall = timed_ops("get", objects, get, concurrency, bar.update)
    return records, wall, verified[0]


def _delete_all(fabric: Fabric, objects: list[ObjectSpec]) -> None:
    """Delete the workload's objects that were stored."""
    store = _connect(fabric)
    for spec in objects:
        if store.exists("bench", spec.key):
            store.delete("bench", spec.key)


def _balance(network: StorageNetwork, before: list[int]) -> tuple[int, float]:
    """Bytes added across containers and the stddev of their utilisation (used / capacity)."""
    added = sum(c.used - b for c, b in zip(network.containers, before, strict=True))
    usage = [c.used / c.capacity for c in network.containers]
    return added, statistics.pstdev(usage) if len(usage) > 1 else 0.0


class StorageBenchmarkConfig(_StorageScenarioConfig):
    """Put then get N objects through the fabric; optionally the same against peers."""

    kind: Literal["storage_benchmark"] = "storage_benchmark"
    # Its figures are the fabric's throughput and latency on this machine: it runs alone.
    exclusive: ClassVar[bool] = True
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "put_throughput_mb_s",
        "get_throughput_mb_s",
        "put_latency_p99_ms",
        "get_latency_p99_ms",
        "storage_overhead",
        "objects_verified",
        "put_failures",
    )
    peers: list[Literal["centralized", "redis"]] = Field(
        default_factory=list,
        description="also run the objects through: centralized (first container, no coding), "
        "redis (a redis-server on loopback)",
    )
    cleanup: bool = Field(True, description="delete the objects at the end of the trial")

    def build(self) -> Scenario:
        """Create the scenario."""
        return StorageBenchmark(self)


class StorageBenchmark:
    """Put, get, verify; then the peers on the same objects."""

    def __init__(self, config: StorageBenchmarkConfig) -> None:
        self.config = config

    def run(self, ctx: RunContext) -> None:
        """One trial."""
        cfg = self.config
        seed = ctx.seed if cfg.seed is None else cfg.seed
        objects = make_objects(
            cfg.objects, cfg.object_size_mb, seed, cfg.source_dir, cfg.reliability
        )
        network, fabric = _open(ctx)
        with fabric:
            before = [c.used for c in network.containers]
            hashes, puts, put_wall = _store_objects(ctx, fabric, objects, cfg.concurrency, "fabric")
            added, spread = _balance(network, before)
            gets, get_wall, verified = _read_back(
                ctx, fabric, objects, hashes, cfg.concurrency, "fabric"
            )
            put_bytes = sum(r.size for r in puts if r.ok)
            shapes = [fabric.stat("bench", o.key) for o in objects if fabric.exists("bench", o.key)]
            if shapes:  # (n, k) per object: fixed by the coder, or chosen by the placer
                ctx.log_metrics(
                    {
                        "mean_chunks_per_object": statistics.fmean(s.m for s in shapes),
                        "mean_data_chunks": statistics.fmean(s.k for s in shapes),
                    }
                )
            ctx.log_metrics(throughput_metrics("put", puts, put_wall))
            ctx.log_metrics(throughput_metrics("get", gets, get_wall))
            ctx.log_metrics(
                {
                    "storage_overhead": added / put_bytes if put_bytes else 0.0,
                    "utilization_stddev": spread,
                    "objects_verified": verified,
                    "objects": len(objects),
                    "bytes_put": put_bytes,
                    "put_failures": sum(not r.ok for r in puts),
                    "degraded_reads": fabric.counters.degraded_reads,
                }
            )
            if cfg.cleanup:
                _delete_all(fabric, objects)
        ctx.write_records("operations", (r.row() for r in puts + gets))
        for peer in cfg.peers:
            self._peer(ctx, peer, objects, network)

    def _peer(
        self, ctx: RunContext, peer: str, objects: list[ObjectSpec], network: StorageNetwork
    ) -> None:
        cfg = self.config
        if peer == "centralized":
            placer = ctx.component("placement", Placer)  # type: ignore[type-abstract]
            fabric = Fabric(
                network.containers[:1], NoCoder(), placer, ctx.run_dir / "centralized.sqlite",
                segment_size=network.segment_size, parallelism=network.parallelism,
                tenants=network.tenants,
            )  # fmt: skip
            with fabric:
                hashes, puts, put_wall = _store_objects(ctx, fabric, objects, cfg.concurrency, peer)
                gets, get_wall, verified = _read_back(
                    ctx, fabric, objects, hashes, cfg.concurrency, peer
                )
                _delete_all(fabric, objects)
        else:
            from components.storage.redis_peer import redis_server

            with redis_server(max(o.size for o in objects)) as client:
                hashes = {}

                def put(spec: ObjectSpec) -> None:
                    data = spec.data()
                    hashes[spec.key] = digest(data)
                    client.set(spec.key, data)

                verified_count = [0]

                def get(spec: ObjectSpec) -> None:
                    if digest(client.get(spec.key)) != hashes[spec.key]:
                        raise ValueError(f"{spec.key}: redis returned different bytes")
                    verified_count[0] += 1

                puts, put_wall = timed_ops("put", objects, put, cfg.concurrency)
                gets, get_wall, verified = [], 0.0, 0
                gets, get_wall = timed_ops("get", objects, get, cfg.concurrency)
                verified = verified_count[0]
        values = {
            **throughput_metrics(f"{peer}_put", puts, put_wall),
            **throughput_metrics(f"{peer}_get", gets, get_wall),
            f"{peer}_objects_verified": verified,
        }
        for op in ("put", "get"):
            theirs = values[f"{peer}_{op}_throughput_mb_s"]
            ours = ctx.metrics.get(f"{op}_throughput_mb_s", 0.0)
            values[f"{op}_throughput_vs_{peer}"] = ours / theirs if theirs else 0.0
        ctx.log_metrics(values)
        ctx.write_records(f"operations_{peer}", (r.row() for r in puts + gets))


class StorageFaultsConfig(_StorageScenarioConfig):
    """Take containers down and corrupt chunks while and after writing; read back; repair."""

    kind: Literal["storage_faults"] = "storage_faults"
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "objects_lost",
        "objects_unreadable_beyond_tolerance",
        "degraded_get_throughput_mb_s",
        "repair_time_s",
        "chunks_repaired",
    )
    corrupt_chunks: int = Field(4, ge=0, le=100_000, description="chunks to overwrite with junk")

    def build(self) -> Scenario:
        """Create the scenario."""
        return StorageFaults(self)


class StorageFaults:
    """The drill: faults within the code's tolerance lose nothing; one more is reported."""

    def __init__(self, config: StorageFaultsConfig) -> None:
        self.config = config

    def run(self, ctx: RunContext) -> None:
        """One trial."""
        import random

        cfg = self.config
        seed = ctx.seed if cfg.seed is None else cfg.seed
        rng = random.Random(seed)
        objects = make_objects(cfg.objects, cfg.object_size_mb, seed, cfg.source_dir)
        network, fabric = _open(ctx)
        containers = network.containers
        with fabric:
            tolerance = fabric.coder.m - fabric.coder.k
            if tolerance >= len(containers):
                raise ValueError(
                    f"coding tolerates {tolerance} lost chunks but the network has only "
                    f"{len(containers)} containers; add containers to test faults"
                )
            victims = rng.sample(range(len(containers)), tolerance + 1)
            first, second = list(chunked(objects, 2)) if len(objects) > 1 else (objects, [])
            # Half the objects with everything up, the rest with `tolerance` containers down.
            hashes, puts, _ = _store_objects(ctx, fabric, list(first), cfg.concurrency, "healthy")
            for i in victims[:tolerance]:
                containers[i].take_down()
            more, puts2, _ = _store_objects(ctx, fabric, list(second), cfg.concurrency, "degraded")
            hashes.update(more)
            stored = [o for o in objects if o.key in hashes and fabric.exists("bench", o.key)]
            corrupted = self._corrupt(fabric, rng, cfg.corrupt_chunks)
            gets, wall, verified = _read_back(
                ctx, fabric, stored, hashes, cfg.concurrency, "degraded"
            )
            lost = len(stored) - verified
            # One failure past the tolerance: reported, not hidden.
            containers[victims[tolerance]].take_down()
            beyond, _, still = _read_back(ctx, fabric, stored, hashes, cfg.concurrency, "beyond")
            containers[victims[tolerance]].bring_up()
            # Repair onto the containers that are up, then read everything again.
            repair = fabric.repair()
            after, _, verified_after = _read_back(
                ctx, fabric, stored, hashes, cfg.concurrency, "repaired"
            )
            for i in victims:
                containers[i].bring_up()
            strays = fabric.sweep_strays()  # old copies of the chunks repair moved away
            ctx.log_metrics(
                {
                    "objects_stored": len(stored),
                    "put_failures": sum(not r.ok for r in puts + puts2),
                    "containers_down": tolerance,
                    "chunks_corrupted": corrupted,
                    "objects_lost": lost,
                    "objects_unreadable_beyond_tolerance": len(stored) - still,
                    "degraded_get_throughput_mb_s": sum(r.size for r in gets if r.ok)
                    / 1e6
                    / max(wall, 1e-9),
                    "degraded_reads": fabric.counters.degraded_reads,
                    "repair_time_s": repair.seconds,
                    "chunks_repaired": repair.chunks_repaired,
                    "objects_lost_after_repair": len(stored) - verified_after,
                    "stray_chunks_removed": strays,
                }
            )
            ctx.write_records("operations", (r.row() for r in puts + puts2 + gets + beyond + after))

    @staticmethod
    def _corrupt(fabric: Fabric, rng: Any, count: int) -> int:
        """Overwrite up to ``count`` chunks with zeros, keeping every segment within tolerance.

        Only segments with every chunk on an up container are touched, at most m − k chunks
        each, so that together with the containers already down no segment loses more than
        the code tolerates.
        """
        tolerance = fabric.coder.m - fabric.coder.k
        if tolerance == 0:
            return 0
        eligible = []
        for row in fabric.catalog.committed():
            segments: dict[int, list[Any]] = {}
            for chunk in fabric.catalog.chunks(row.id):
                segments.setdefault(chunk.segment, []).append(chunk)
            for chunks in segments.values():
                if all(fabric.container(c.container).up for c in chunks):
                    eligible.append(chunks)
        hit: dict[int, int] = {}
        done = 0
        for _ in range(count):
            open_segments = [i for i in range(len(eligible)) if hit.get(i, 0) < tolerance]
            if not open_segments:
                break
            index = rng.choice(open_segments)
            chunk = eligible[index][rng.randrange(len(eligible[index]))]
            eligible[index] = [c for c in eligible[index] if c is not chunk]
            hit[index] = hit.get(index, 0) + 1
            fabric.container(chunk.container).write(chunk.path, bytes(chunk.size))
            done += 1
        return done
