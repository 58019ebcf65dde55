"""The storage scenarios through the engine: benchmark with peers, and the fault drill."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from framework.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def _metrics(recipe: str) -> dict[str, float]:
    (run,) = Path("results", recipe).glob("*/metrics.json")
    return dict(json.loads(run.read_text())["aggregate"])


def test_storage_benchmark_with_centralized_and_redis_peers(workdir: Path) -> None:
    status = main(
        [
            "run",
            "recipe=dynostore/vs_redis",
            "scenario.objects=4",
            "scenario.object_size_mb=[0.5]",
            "scenario.peers=[centralized,redis]",
            "storage.segment_size_mb=0.25",
        ]
    )
    assert status == 0
    metrics = _metrics("dynostore/vs_redis")
    assert metrics["objects_verified"] == 4
    assert metrics["redis_objects_verified"] == 4
    assert metrics["centralized_objects_verified"] == 4
    assert metrics["storage_overhead"] == pytest.approx(1.5, rel=0.01)
    assert metrics["put_throughput_vs_redis"] > 0


def test_fault_drill_loses_nothing_within_tolerance(workdir: Path) -> None:
    status = main(
        [
            "run",
            "recipe=dynostore/faults",
            "scenario.objects=8",
            "scenario.object_size_mb=[0.3,1.0]",
            "storage=memory",
            "storage.containers=8",
            "storage.segment_size_mb=0.25",
            "scenario.concurrency=1",
        ]
    )
    assert status == 0
    metrics = _metrics("dynostore/faults")
    assert metrics["objects_lost"] == 0
    assert metrics["objects_unreadable_beyond_tolerance"] > 0
    assert metrics["chunks_corrupted"] == 6
    assert metrics["chunks_repaired"] > 0
    assert metrics["objects_lost_after_repair"] == 0
    assert metrics["stray_chunks_removed"] > 0  # copies left on the containers that were down


def test_heterogeneous_network_spans_local_memory_and_s3(
    workdir: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)  # how the recipe says to point at S3
    status = main(
        [
            "run",
            "recipe=dynostore/heterogeneous",
            "scenario.objects=6",
            "scenario.object_size_mb=[0.5,1.5]",
            "storage.segment_size_mb=0.25",
            "scenario.peers=[]",
            "scenario.cleanup=false",
        ]
    )
    assert status == 0
    metrics = _metrics("dynostore/heterogeneous")
    assert metrics["objects_verified"] == 6
    assert metrics["storage_overhead"] == pytest.approx(1.5, rel=0.05)
    import s3fs

    s3 = s3fs.S3FileSystem(endpoint_url=s3_endpoint, skip_instance_cache=True)
    chunks = [p for p in s3.find("loom-heterogeneous") if ".loom-health" not in p]
    assert len(chunks) >= 6 * 2  # every object has chunks on the S3 containers
