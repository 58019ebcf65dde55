"""The storage fabric's contract, run on every container backend and every coder."""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydantic import ValidationError

from components.coding.isal import IsalConfig
from components.coding.none import NoCodingConfig
from components.coding.protocol import Coder
from components.coding.replication import ReplicationConfig
from components.coding.zfec import ZfecConfig
from components.placement.utility_factor import UtilityFactorConfig
from components.storage._catalog import Catalog, ChunkRow
from components.storage.container import ContainerSpec
from components.storage.fabric import StorageFabric, TenantStore
from components.storage.local import LocalStorageConfig
from components.storage.memory import MemoryStorageConfig
from components.storage.mixed import MixedStorageConfig
from components.storage.protocol import (
    AccessDenied,
    InsufficientCapacity,
    InvalidKey,
    ObjectNotFound,
    ObjectUnreadable,
    StorageConfig,
    StorageError,
    StorageNetwork,
)
from components.storage.s3 import S3StorageConfig
from tests.components.group_options import composed, conf_files

SEGMENT = 64 * 1024
SEGMENT_MB = SEGMENT / 2**20
TOKEN = "loom-dev-token"
CODERS = {
    "none": NoCodingConfig(),
    "replication": ReplicationConfig(copies=3),
    "zfec": ZfecConfig(k=4, m=6),
    "isal": IsalConfig(k=4, m=6),
}


def _storage(kind: str, s3_endpoint: str, tmp_path: Path) -> StorageConfig:
    common = {"segment_size_mb": SEGMENT_MB, "parallelism": 3}
    if kind == "local":
        return LocalStorageConfig(containers=6, root=str(tmp_path / "containers"), **common)
    if kind == "memory":
        return MemoryStorageConfig(containers=6, **common)
    return S3StorageConfig(
        containers=6,
        bucket="loom-test",
        prefix=f"run-{uuid.uuid4().hex[:8]}",
        endpoint_url=s3_endpoint,
        **common,
    )


def _registered_storage(option: str, s3_endpoint: str, tmp_path: Path) -> StorageConfig:
    """``storage=option`` from its conf/ file, pointed at this test's folder and S3 server."""
    config = composed("storage", option)
    assert isinstance(config, StorageConfig)
    data = config.model_dump() | {"segment_size_mb": SEGMENT_MB, "parallelism": 3}
    if isinstance(config, MixedStorageConfig):  # six containers over three kinds of backend
        s3 = {"endpoint_url": s3_endpoint, "key": "loom-test", "secret": "loom-test-secret"}
        prefix = f"loom-test/mixed-{uuid.uuid4().hex[:8]}"
        data["containers"] = [
            *({"url": f"memory://mixed-{uuid.uuid4().hex[:8]}/{i}"} for i in range(2)),
            *({"url": f"file://{tmp_path}/mixed-{i}"} for i in range(2)),
            *({"url": f"s3://{prefix}/{i}", "options": s3} for i in range(2)),
        ]
        data["containers"][1]["link"] = {"bandwidth_mb_s": 200.0, "latency_ms": 1.0}
        return type(config).model_validate(data)
    data["containers"] = 6
    if isinstance(config, LocalStorageConfig):
        data["root"] = str(tmp_path / "containers")
    if isinstance(config, S3StorageConfig):
        data |= {
            "bucket": "loom-test",
            "prefix": f"run-{uuid.uuid4().hex[:8]}",
            "endpoint_url": s3_endpoint,
        }
    return type(config).model_validate(data)


@pytest.fixture(params=conf_files("storage"))
def network(
    request: pytest.FixtureRequest, s3_endpoint: str, tmp_path: Path
) -> Iterator[StorageNetwork]:
    with _registered_storage(request.param, s3_endpoint, tmp_path).build() as opened:
        yield opened


@pytest.fixture(params=conf_files("coding"))
def coder(request: pytest.FixtureRequest) -> Coder:
    built = composed("coding", request.param).build()
    assert isinstance(built, Coder)
    return built


@pytest.fixture
def fabric(network: StorageNetwork, coder: Coder, tmp_path: Path) -> Iterator[StorageFabric]:
    with network.fabric(coder, UtilityFactorConfig().build(), tmp_path / "catalog.sqlite") as fab:
        yield fab


@contextmanager
def _zfec_fabric(
    config: StorageConfig, tmp_path: Path, k: int = 4, m: int = 6
) -> Iterator[StorageFabric]:
    """A fabric with zfec (k, m) and utility-factor placement over ``config``'s network."""
    with (
        config.build() as network,
        network.fabric(
            ZfecConfig(k=k, m=m).build(), UtilityFactorConfig().build(), tmp_path / "c.sqlite"
        ) as fabric,
    ):
        yield fabric


def _store(fabric: StorageFabric) -> TenantStore:
    return fabric.connect("loom", TOKEN)


def _payload(size: int, seed: int = 1) -> bytes:
    import numpy as np

    return np.random.default_rng(seed).bytes(size)


def test_contract_put_get_list_stat_delete(fabric: StorageFabric, tmp_path: Path) -> None:
    store = _store(fabric)
    big = _payload(5 * SEGMENT + 123)
    file_path = tmp_path / "input.bin"
    file_path.write_bytes(_payload(2 * SEGMENT, seed=2))
    stored = {
        "a/big.bin": store.put("cat", "a/big.bin", big),
        "a/file.bin": store.put("cat", "a/file.bin", file_path),
        "b/stream.bin": store.put("cat", "b/stream.bin", io.BytesIO(b"streamed bytes")),
        "empty": store.put("cat", "empty", b""),
    }
    for key, put in stored.items():  # a put says what it stored, as the catalog has it
        assert put == store.stat("cat", key)
    assert store.get("cat", "a/big.bin") == big
    assert b"".join(store.get_stream("cat", "a/file.bin")) == file_path.read_bytes()
    assert store.get("cat", "b/stream.bin") == b"streamed bytes"
    assert store.get("cat", "empty") == b""
    assert store.list("cat") == ["a/big.bin", "a/file.bin", "b/stream.bin", "empty"]
    assert store.list("cat", "a/") == ["a/big.bin", "a/file.bin"]
    stat = store.stat("cat", "a/big.bin")
    assert stat.size == len(big) and len(stat.placement) == 6
    assert all(len(seg) == fabric.coder.m for seg in stat.placement)
    assert all(len(set(seg)) == len(seg) for seg in stat.placement)  # one chunk per container
    store.put("cat", "a/big.bin", b"replaced")  # overwrite: the old chunks are collected
    assert store.get("cat", "a/big.bin") == b"replaced"
    for key in store.list("cat"):
        store.delete("cat", key)
    assert store.list("cat") == [] and not store.exists("cat", "a/big.bin")
    with pytest.raises(ObjectNotFound):
        store.get("cat", "a/big.bin")
    assert sum(_chunk_files(fabric)) == 0  # nothing left behind


def _chunk_files(fabric: StorageFabric) -> list[int]:
    counts = []
    for container in fabric.containers:
        container.fs.invalidate_cache()
        files = container.fs.find(container.root)
        # Health probes, and deleted chunk files a local container keeps to write over.
        counts.append(len([f for f in files if "/.loom-" not in f]))
    return counts


def _inodes(folder: Path) -> dict[str, int]:
    return {path.name: path.stat().st_ino for path in folder.iterdir() if path.is_file()}


def test_a_local_container_writes_new_chunks_over_deleted_ones(tmp_path: Path) -> None:
    config = LocalStorageConfig(containers=6, root=str(tmp_path / "c"), segment_size_mb=SEGMENT_MB)
    with _zfec_fabric(config, tmp_path) as fabric:
        store = _store(fabric)
        store.put("cat", "old", _payload(2 * SEGMENT))
        container = fabric.containers[0]
        root = Path(container.root)
        before = _inodes(root)
        store.delete("cat", "old")
        assert _inodes(root) == {}  # gone from the container's namespace at once
        kept = set(_inodes(root / ".loom-recycled").values())
        assert kept == set(before.values()) and kept
        container.remeasure()
        assert container.used == 0  # kept files are free space
        data = _payload(2 * SEGMENT, seed=7)
        store.put("cat", "new", data)
        assert set(_inodes(root).values()) & kept  # written over a deleted chunk's file
        assert store.get("cat", "new") == data
        assert fabric.scrub().chunks_corrupt == 0  # a longer old file was cut to size
        # Another process swept the bin (collect_garbage): writes create files instead.
        fabric.collect_garbage()
        assert _inodes(root / ".loom-recycled") == {}
        store.put("cat", "newer", data[: SEGMENT // 3])
        assert store.get("cat", "newer") == data[: SEGMENT // 3]
        for key in ("new", "newer"):
            store.delete("cat", key)
    assert _inodes(root / ".loom-recycled") == {}  # closing the fabric empties its bins


def test_a_container_keeps_at_most_a_few_deleted_files(tmp_path: Path) -> None:
    config = LocalStorageConfig(containers=6, root=str(tmp_path / "c"), segment_size_mb=SEGMENT_MB)
    with _zfec_fabric(config, tmp_path) as fabric:
        store = _store(fabric)
        store.put("cat", "big", _payload(40 * SEGMENT))
        store.delete("cat", "big")
        for container in fabric.containers:
            assert 0 < len(_inodes(Path(container.root) / ".loom-recycled")) <= 16
        assert sum(_chunk_files(fabric)) == 0


def test_losing_up_to_m_minus_k_containers_loses_nothing(fabric: StorageFabric) -> None:
    store = _store(fabric)
    data = _payload(3 * SEGMENT + 7)
    store.put("cat", "x", data)
    tolerance = fabric.coder.m - fabric.coder.k
    holders = store.stat("cat", "x").placement[0]  # segment 0's containers, chunk order
    for name in holders[:tolerance]:
        fabric.container(name).take_down()
    assert store.get("cat", "x") == data
    if tolerance:
        assert fabric.counters.degraded_reads > 0
    # One more holder of segment 0 down: past the tolerance, reported, never wrong bytes.
    fabric.container(holders[tolerance]).take_down()
    with pytest.raises(ObjectUnreadable, match="needs"):
        store.get("cat", "x")
    for container in fabric.containers:
        container.bring_up()


@pytest.mark.parametrize("coding", ["zfec", "replication"])
def test_corrupt_chunk_is_detected_read_around_and_repaired(coding: str, tmp_path: Path) -> None:
    with (
        MemoryStorageConfig(containers=6, segment_size_mb=SEGMENT_MB).build() as network,
        network.fabric(
            CODERS[coding].build(), UtilityFactorConfig().build(), tmp_path / "c.sqlite"
        ) as fabric,
    ):
        store = _store(fabric)
        data = _payload(2 * SEGMENT)
        store.put("cat", "x", data)
        row = fabric.catalog.visible("cat", "x")
        assert row is not None
        victim = fabric.catalog.chunks(row.id)[0]
        fabric.container(victim.container).write(victim.path, b"\0" * victim.size)
        assert store.get("cat", "x") == data
        assert fabric.counters.chunk_read_failures >= 1
        report = fabric.scrub()
        assert report.chunks_corrupt == 1 and report.chunks_repaired == 0
        repaired = fabric.repair()
        assert repaired.chunks_repaired == 1
        assert fabric.scrub().chunks_corrupt == 0


def test_repair_restores_full_redundancy_after_container_loss(tmp_path: Path) -> None:
    config = MemoryStorageConfig(containers=8, segment_size_mb=SEGMENT_MB)
    with _zfec_fabric(config, tmp_path) as fabric:
        store = _store(fabric)
        data = _payload(4 * SEGMENT)
        store.put("cat", "x", data)
        down = fabric.containers[:2]
        for container in down:
            container.take_down()
        report = fabric.repair()
        assert report.chunks_repaired > 0 and not report.objects_unrecoverable
        for segment in store.stat("cat", "x").placement:
            assert len(set(segment)) == 6
            assert not {c.name for c in down} & set(segment)
        assert fabric.scrub().chunks_missing == 0
        assert store.get("cat", "x") == data


def test_chunks_left_on_a_down_container_by_repair_are_swept_when_it_returns(
    tmp_path: Path,
) -> None:
    config = LocalStorageConfig(containers=8, root=str(tmp_path / "c"), segment_size_mb=SEGMENT_MB)
    with _zfec_fabric(config, tmp_path) as fabric:
        store = _store(fabric)
        data = _payload(4 * SEGMENT)
        store.put("cat", "x", data)
        down = fabric.containers[:2]
        left = {c.name: len(fabric.container(c.name).fs.find(c.root)) for c in down}
        for container in down:
            container.take_down()
        moved = fabric.repair().chunks_repaired
        assert moved > 0
        assert len(fabric.catalog.strays()) == moved  # the old copies, unreachable for now
        for container in down:
            container.bring_up()
        assert fabric.collect_garbage() == moved
        assert fabric.catalog.strays() == []
        for container in down:
            files = [f for f in container.fs.find(container.root) if "/.loom-" not in f]
            assert len(files) < left[container.name]
            referenced = {
                f"{container.root}/{c.path}"
                for row in fabric.catalog.committed()
                for c in fabric.catalog.chunks(row.id)
                if c.container == container.name
            }
            assert set(files) == referenced  # nothing unreferenced is left behind
        assert store.get("cat", "x") == data


def test_a_chunk_taking_a_strays_path_is_never_swept(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "c.sqlite")
    catalog.add_stray("c0", "obj/0.1", 10)
    catalog.record_chunks([ChunkRow("obj", 0, 1, "c0", "obj/0.1", 10, "h", 40)])
    assert catalog.strays() == []
    assert not catalog.forget_stray("c0", "obj/0.1")


def test_container_failing_during_put_moves_its_chunks(tmp_path: Path) -> None:
    config = MemoryStorageConfig(containers=7, segment_size_mb=SEGMENT_MB)
    with _zfec_fabric(config, tmp_path) as fabric:
        broken = fabric.containers[0]

        def refuse(key: str, data: object) -> None:
            raise OSError("disk on fire")

        broken.write = refuse  # type: ignore[method-assign]
        store = _store(fabric)
        data = _payload(3 * SEGMENT)
        put = store.put("cat", "x", data)
        assert fabric.counters.chunk_write_failures > 0
        assert all(broken.name not in seg for seg in store.stat("cat", "x").placement)
        assert put == store.stat("cat", "x")  # the put names where the chunks went
        assert fabric.catalog.strays() == []  # the failed copies were deleted at once
        assert store.get("cat", "x") == data


def test_interrupted_put_leaves_no_object_and_no_stray_chunks(tmp_path: Path) -> None:
    class Exploding(io.RawIOBase):
        def __init__(self) -> None:
            self.calls = 0

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            self.calls += 1
            if self.calls > 3:
                raise ConnectionResetError("client went away")
            return _payload(size, seed=self.calls)

    config = LocalStorageConfig(containers=6, root=str(tmp_path / "c"), segment_size_mb=SEGMENT_MB)
    with _zfec_fabric(config, tmp_path) as fabric:
        store = _store(fabric)
        before = [c.used for c in fabric.containers]
        with pytest.raises(ConnectionResetError):
            store.put("cat", "x", Exploding())  # type: ignore[arg-type]
        assert not store.exists("cat", "x")
        assert sum(_chunk_files(fabric)) == 0
        assert [c.used for c in fabric.containers] == before
        assert fabric.catalog.garbage(exclude=set()) == []


def test_concurrent_puts_gets_deletes_are_safe(tmp_path: Path) -> None:
    with (
        MemoryStorageConfig(containers=6, segment_size_mb=SEGMENT_MB).build() as network,
        network.fabric(
            ZfecConfig(k=3, m=5).build(), UtilityFactorConfig().build(), tmp_path / "c.sqlite"
        ) as fabric,
    ):
        store = _store(fabric)
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                for i in range(6):
                    data = _payload(SEGMENT + 100 * n + i, seed=n * 10 + i)
                    key = f"t{n}/o{i}"
                    store.put("cat", key, data)
                    assert store.get("cat", key) == data
                    if i % 2:
                        store.delete("cat", key)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(store.list("cat")) == 8 * 3


def test_tenants_reach_only_their_own_catalogs(tmp_path: Path) -> None:
    config = MemoryStorageConfig(
        containers=3,
        tenants={"alice": "a-secret", "bob": "b-secret"},  # type: ignore[dict-item]
    )
    with (
        config.build() as network,
        network.fabric(
            NoCodingConfig().build(), UtilityFactorConfig().build(), tmp_path / "c.sqlite"
        ) as fabric,
    ):
        alice = fabric.connect("alice", "a-secret")
        alice.put("alice-data", "x", b"1")
        with pytest.raises(AccessDenied, match="wrong token"):
            fabric.connect("alice", "b-secret")
        with pytest.raises(AccessDenied, match="unknown tenant"):
            fabric.connect("mallory", "x")
        bob = fabric.connect("bob", "b-secret")
        with pytest.raises(AccessDenied, match="belongs to another tenant"):
            bob.get("alice-data", "x")
        with pytest.raises(AccessDenied):
            bob.put("alice-data", "y", b"2")
        assert "a-secret" not in repr(config) and "a-secret" not in config.model_dump_json()


@pytest.mark.parametrize(
    "key", ["../escape", "a/../../b", "/etc/passwd", "a//b", "./a", "", "x" * 1025, "a\\b", "a\0b"]
)
def test_traversal_and_malformed_keys_are_refused(key: str, tmp_path: Path) -> None:
    with (
        MemoryStorageConfig(containers=2).build() as network,
        network.fabric(
            NoCodingConfig().build(), UtilityFactorConfig().build(), tmp_path / "c.sqlite"
        ) as fabric,
    ):
        with pytest.raises(InvalidKey):
            _store(fabric).put("cat", key, b"x")
        with pytest.raises(InvalidKey):
            network.containers[0].path(key)


def test_object_larger_than_free_capacity_is_refused_before_writing(tmp_path: Path) -> None:
    config = MemoryStorageConfig(containers=6, capacity_mb=0.1)
    with _zfec_fabric(config, tmp_path) as fabric:
        with pytest.raises(InsufficientCapacity, match="bytes are free"):
            _store(fabric).put("cat", "big", _payload(600_000))
        assert sum(_chunk_files(fabric)) == 0


@pytest.mark.parametrize(
    "model,fields,fragment",
    [
        (ZfecConfig, {"k": 7, "m": 6}, "k=7 > m=6"),
        (ZfecConfig, {"k": 4, "m": 300}, "less than or equal to 256"),
        (ZfecConfig, {"k": 0, "m": 6}, "greater than or equal to 1"),
        (ContainerSpec, {"url": "nosuch://x"}, "unknown container protocol 'nosuch'"),
        (ContainerSpec, {"url": "gcs://bucket/x"}, "pip install gcsfs"),
    ],
)
def test_bad_configs_name_the_problem(
    model: type, fields: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ValidationError, match=fragment.replace("(", r"\(")):
        model(**fields)


def test_unreachable_s3_endpoint_fails_clearly(tmp_path: Path) -> None:
    config = S3StorageConfig(endpoint_url="http://127.0.0.1:9", connect_timeout_s=1, containers=2)
    with pytest.raises(StorageError, match=r"127\.0\.0\.1:9"), config.build():
        pass


def test_put_memory_is_bounded_by_segments_in_flight(tmp_path: Path) -> None:
    """A 48 MiB file goes through 1 MiB segments without the process holding it all."""
    import tracemalloc

    source = tmp_path / "big.bin"
    with source.open("wb") as out:
        for i in range(48):
            out.write(_payload(2**20, seed=i))
    config = MemoryStorageConfig(containers=6, segment_size_mb=1, parallelism=2)
    with _zfec_fabric(config, tmp_path) as fabric:
        store = _store(fabric)
        tracemalloc.start()
        store.put("cat", "big", source)
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        total = sum(len(part) for part in store.get_stream("cat", "big"))
        _, get_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert total == 48 * 2**20
    # The memory containers hold the chunks themselves (72 MiB), so count the peak above that.
    assert get_peak - put_peak < 16 * 2**20


def _probe_many(url: str, times: int) -> int:
    from components.storage.container import ContainerSpec, DataContainer
    from components.storage.protocol import ContainerDown

    container = DataContainer(ContainerSpec(url=url, name="shared"), 0).open()
    downs = 0
    for _ in range(times):
        try:
            container.check_health()
        except ContainerDown:
            downs += 1
    return downs


def test_processes_sharing_a_container_never_mark_it_down(tmp_path: Path) -> None:
    # Every process used to write one probe file over the others' and read theirs back.
    import multiprocessing

    url = f"file://{tmp_path / 'shared'}"
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        downs = pool.starmap(_probe_many, [(url, 100)] * 3)
    assert downs == [0, 0, 0]
    assert not [p for p in (tmp_path / "shared").iterdir() if p.name.startswith(".loom-health")]


def test_a_stripe_on_fewer_containers_than_chunks_is_refused_unless_allowed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Three containers, zfec (2, 3), one down: the stripe's chunks went to [c0, c1, c0] and
    # nothing said that losing c0 now loses the object. Now it is refused, or, where the
    # storage group allows sharing, counted and said.
    for share in (False, True):
        three = MemoryStorageConfig(containers=3, share_containers=share)  # all three each stripe
        with _zfec_fabric(three, tmp_path / str(share), k=2, m=3) as fabric:
            fabric.put("c", "whole", b"x" * 1000)
            assert fabric.counters.redundancy_lost == 0
            fabric.containers[2].take_down()
            if not share:
                with pytest.raises(InsufficientCapacity, match="share_containers=true"):
                    fabric.put("c", "shared", b"y" * 1000)
                assert not fabric.exists("c", "shared")
                continue
            with caplog.at_level("WARNING", logger="components.storage.fabric"):
                fabric.put("c", "shared", b"y" * 1000)
            assert fabric.counters.redundancy_lost == 1
            assert "went to 2 containers" in caplog.text
            assert fabric.get("c", "shared") == b"y" * 1000


def test_a_repair_with_no_free_container_is_left_undone_unless_sharing_is_allowed(
    tmp_path: Path,
) -> None:
    # zfec (2, 3) over three containers, one lost for good: no container without a chunk of
    # the stripe is left, so the lost chunk is rebuilt onto a shared one only where allowed.
    for share in (False, True):
        three = MemoryStorageConfig(containers=3, share_containers=share)  # all three each stripe
        with _zfec_fabric(three, tmp_path / str(share), k=2, m=3) as fabric:
            fabric.put("c", "obj", b"z" * 5000)
            fabric.containers[0].take_down()
            report = fabric.repair()
            assert report.chunks_missing == 1
            assert (report.chunks_repaired, report.chunks_unrepaired) == (share, not share)
            assert fabric.counters.redundancy_lost == share
            assert fabric.get("c", "obj") == b"z" * 5000


def test_a_local_container_taken_down_is_down_for_a_process_that_opens_it_later(
    tmp_path: Path,
) -> None:
    from components.faults import Fault
    from components.storage.container import DataContainer, inject_container_fault
    from components.storage.protocol import ContainerDown

    spec = ContainerSpec(url=str(tmp_path / "c0"), name="de-c0")
    first = DataContainer(spec, 0).open()
    done = inject_container_fault(
        [first], "container_down", ["de-c0"], Fault(kind="container_down")
    )
    later = DataContainer(spec, 0)  # as a worker process opening it after the fault
    with pytest.raises(ContainerDown, match=r"container de-c0 is down: .* is a file, not a folder"):
        later.open()
    assert done.heal is not None
    done.heal()
    assert DataContainer(spec, 0).open().up
