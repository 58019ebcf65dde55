"""``scenario=storage_faults``: a fault drill: containers down, chunks corrupted, repair checked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from components.base import ComponentConfig, RunContext, Scenario
from components.scenarios.storage_trial import (
    StorageScenarioConfig,
    open_fabric,
    read_back,
    store_objects,
)
from components.scenarios.storage_workload import (
    chunked,
    make_objects,
)
from components.storage.fabric import StorageFabric
from components.storage.protocol import StorageConfig


class StorageFaultsConfig(StorageScenarioConfig):
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

    def check_components(self, groups: Mapping[str, ComponentConfig]) -> list[str]:
        """The drill takes m − k containers down and then one more: it needs more than that."""
        problems = super().check_components(groups)
        storage, coder = groups["storage"], groups["coding"].build()
        assert isinstance(storage, StorageConfig)
        tolerance = int(getattr(coder, "m", 1)) - int(getattr(coder, "k", 1))
        if tolerance >= storage.container_count():
            problems.append(
                f"coding={groups['coding'].kind} tolerates {tolerance} lost chunks and storage="
                f"{storage.kind} has {storage.container_count()} container(s): the drill takes "
                f"{tolerance + 1} down; add containers or choose a shorter code"
            )
        return problems


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
        network, fabric = open_fabric(ctx)
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
            hashes, puts, _ = store_objects(ctx, fabric, list(first), cfg.concurrency, "healthy")
            for i in victims[:tolerance]:
                containers[i].take_down()
            more, puts2, _ = store_objects(ctx, fabric, list(second), cfg.concurrency, "degraded")
            hashes.update(more)
            stored = [o for o in objects if o.key in hashes and fabric.exists("bench", o.key)]
            corrupted = self._corrupt(fabric, rng, cfg.corrupt_chunks)
            gets, wall, verified = read_back(
                ctx, fabric, stored, hashes, cfg.concurrency, "degraded"
            )
            lost = len(stored) - verified
            # One failure past the tolerance: reported, not hidden.
            containers[victims[tolerance]].take_down()
            beyond, _, still = read_back(ctx, fabric, stored, hashes, cfg.concurrency, "beyond")
            containers[victims[tolerance]].bring_up()
            # Repair onto the containers that are up, then read everything again.
            repair = fabric.repair()
            after, _, verified_after = read_back(
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
                    "redundancy_lost": fabric.counters.redundancy_lost,
                    "repair_time_s": repair.seconds,
                    "chunks_repaired": repair.chunks_repaired,
                    "chunks_unrepaired": repair.chunks_unrepaired,
                    "objects_lost_after_repair": len(stored) - verified_after,
                    "stray_chunks_removed": strays,
                }
            )
            ctx.write_records("operations", (r.row() for r in puts + puts2 + gets + beyond + after))

    @staticmethod
    def _corrupt(fabric: StorageFabric, rng: Any, count: int) -> int:
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
