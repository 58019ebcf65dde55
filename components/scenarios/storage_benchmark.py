"""``scenario=storage_benchmark``: put then get N objects through the fabric, and through peers."""

from __future__ import annotations

import statistics
from typing import ClassVar, Literal

from pydantic import Field

from components.base import RunContext, Scenario
from components.coding.none import NoCoder
from components.placement.protocol import Placer
from components.scenarios.storage_trial import (
    StorageScenarioConfig,
    balance,
    delete_all,
    open_fabric,
    read_back,
    store_objects,
)
from components.scenarios.storage_workload import (
    ObjectSpec,
    digest,
    make_objects,
    throughput_metrics,
    timed_ops,
)
from components.storage.fabric import StorageFabric
from components.storage.protocol import StorageNetwork


class StorageBenchmarkConfig(StorageScenarioConfig):
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
        "objects_lost",
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
        network, fabric = open_fabric(ctx)
        with fabric:
            before = [c.used for c in network.containers]
            hashes, puts, put_wall = store_objects(ctx, fabric, objects, cfg.concurrency, "fabric")
            added, spread = balance(network, before)
            gets, get_wall, verified = read_back(
                ctx, fabric, objects, hashes, cfg.concurrency, "fabric"
            )
            put_bytes = sum(r.size for r in puts if r.ok)
            refused = sum(not r.ok for r in puts)
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
                    "put_failures": refused,
                    # Acknowledged (put) but not read back intact: must be 0.
                    "objects_lost": len(objects) - refused - verified,
                    "degraded_reads": fabric.counters.degraded_reads,
                    "redundancy_lost": fabric.counters.redundancy_lost,
                }
            )
            if cfg.cleanup:
                delete_all(fabric, objects)
        ctx.write_records("operations", (r.row() for r in puts + gets))
        for peer in cfg.peers:
            self._peer(ctx, peer, objects, network)

    def _peer(
        self, ctx: RunContext, peer: str, objects: list[ObjectSpec], network: StorageNetwork
    ) -> None:
        cfg = self.config
        if peer == "centralized":
            placer = ctx.component("placement", Placer)  # type: ignore[type-abstract]
            fabric = StorageFabric(
                network.containers[:1],
                NoCoder(),
                placer,
                ctx.run_dir / "centralized.sqlite",
                segment_size=network.segment_size,
                parallelism=network.parallelism,
                tenants=network.tenants,
            )
            with fabric:
                hashes, puts, put_wall = store_objects(ctx, fabric, objects, cfg.concurrency, peer)
                gets, get_wall, verified = read_back(
                    ctx, fabric, objects, hashes, cfg.concurrency, peer
                )
                delete_all(fabric, objects)
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
