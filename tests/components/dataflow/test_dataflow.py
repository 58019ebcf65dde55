"""The dataflow group: connector contract, proxies kept unresolved on the client, no leaks."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from proxystore.proxy import is_resolved
from pydantic import ValidationError

from components.base import dotted_name
from components.coding.isal import IsalConfig
from components.coding.zfec import ZfecConfig
from components.dataflow._connectors import OpenConnector
from components.dataflow._sizes import ProxyRule, estimate_size
from components.dataflow.by_value import ByValueConfig
from components.dataflow.proxystore_flow import ProxyStoreConfig, ProxyStoreFlow, _Cache
from components.executor.dask import DaskExecutorConfig
from components.executor.process import ProcessExecutorConfig
from components.executor.thread import ThreadExecutorConfig
from components.loopback import free_port
from components.placement.drex_lb import DrexLBConfig
from components.placement.round_robin import RoundRobinConfig
from components.runtime.taskpath import FailureSpec, TaskPath
from components.scenarios.taps_workflows import synthetic_task
from components.storage.local import LocalStorageConfig
from components.storage.mixed import MixedStorageConfig
from components.storage.protocol import InsufficientCapacity
from components.storage.s3 import S3StorageConfig

CONNECTORS = ["file", "redis", "zmq", "fabric"]
MB = 2**20
# The fabric connector builds its store from the run's storage groups; these are a small run's.
FABRIC_RUN = {
    "storage": LocalStorageConfig(containers=3),
    "coding": ZfecConfig(k=2, m=3),
    "placement": RoundRobinConfig(),
}
CODING = ["components.coding.zfec.ZfecConfig", {"k": 2, "m": 3}]
PLACEMENT = ["components.placement.round_robin.RoundRobinConfig", {}]


def proxystore(**settings: Any) -> ProxyStoreConfig:
    """A proxystore data flow as a validated run builds it (the fabric joined to its groups)."""
    return ProxyStoreConfig(**settings).joined(FABRIC_RUN)


@pytest.fixture(params=CONNECTORS)
def opened(request: pytest.FixtureRequest) -> Iterator[tuple[str, OpenConnector]]:
    """Each connector, opened as a run opens it (servers started on loopback)."""
    name = request.param
    config = proxystore(connector=name).connector_config()
    handle = config.open()
    try:
        yield name, handle
    finally:
        handle.close()


def test_connector_contract(opened: tuple[str, OpenConnector]) -> None:
    _, handle = opened
    c = handle.connector
    key = c.put(b"loom" * 1000)
    assert c.exists(key) and c.get(key) == b"loom" * 1000
    keys = c.put_batch([b"a", b"", bytes(range(256)) * 4096])
    assert c.get_batch(keys) == [b"a", b"", bytes(range(256)) * 4096]
    c.evict(key)
    assert not c.exists(key) and c.get(key) is None
    c.evict(key)  # evicting what is gone is not an error
    for k in keys:
        c.evict(k)
    if handle.stored is not None:
        assert handle.stored() == (0, 0)


def test_connector_keeps_proxystore_s_connector_contract(opened: tuple[str, OpenConnector]) -> None:
    # What ProxyStore's own suite asks of every connector: a config round trip, and, for a
    # DeferrableConnector, a new key that holds nothing until set.
    from proxystore.connectors.protocols import Connector, DeferrableConnector

    name, handle = opened
    c = handle.connector
    assert isinstance(c, Connector)
    rebuilt = type(c).from_config(c.config())
    assert isinstance(rebuilt, Connector) and type(rebuilt) is type(c)
    key = c.put(b"round trip")
    assert rebuilt.get(key) == b"round trip"
    c.evict(key)
    if name == "zmq":
        assert not isinstance(c, DeferrableConnector)  # proxystore-ex's zmq has no new_key
        return
    assert isinstance(c, DeferrableConnector)
    deferred = c.new_key(b"ignored: a new key holds nothing")
    assert not c.exists(deferred) and c.get(deferred) is None
    c.set(deferred, b"set later")
    assert c.exists(deferred) and c.get(deferred) == b"set later"
    c.evict(deferred)
    assert not c.exists(deferred)


_CHILD = """
import hashlib, importlib, json, sys
kind, config, key_type, key = json.loads(sys.argv[1])
module, _, name = kind.rpartition(".")
connector = getattr(importlib.import_module(module), name)(**config)
module, _, name = key_type.rpartition(".")
key = getattr(importlib.import_module(module), name)(*key)
data = connector.get(key)
print(hashlib.sha256(data).hexdigest() if data is not None else "missing")
"""


def _digest_read_elsewhere(connector: Any, key: Any) -> str:
    """The SHA-256 of ``key``'s object, read in a fresh process by a connector rebuilt there."""
    kinds = [dotted_name(type(connector)), connector.config(), dotted_name(type(key)), list(key)]
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(kinds)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_connector_rebuilt_from_its_config_in_another_process(
    opened: tuple[str, OpenConnector],
) -> None:
    name, handle = opened
    c = handle.connector
    data = np.random.default_rng(0).bytes(3 * MB)
    key = c.put(data)
    if name == "fabric":  # lose one container of three: k=2 of m=3 chunks still read
        first = c.config()["containers"][0]["url"].removeprefix("file://")
        for chunk in Path(first).rglob("*"):
            if chunk.is_file():
                chunk.unlink()
    assert _digest_read_elsewhere(c, key) == hashlib.sha256(data).hexdigest()
    c.evict(key)


def test_fabric_connector_survives_a_container_that_cannot_be_opened() -> None:
    config = proxystore(connector="fabric")
    handle = config.connector_config().open()
    try:
        key = handle.connector.put(b"x" * MB)
        settings = handle.connector.config()
        blocker = Path(settings["catalog_path"]).parent / "a-file"
        blocker.write_bytes(b"")
        settings["containers"][1]["url"] = f"file://{blocker}/c1"  # cannot be made: down
        from components.dataflow.fabric_connector import StorageFabricConnector

        rebuilt = StorageFabricConnector(**settings)
        assert rebuilt.get(key) == b"x" * MB
        rebuilt.close()
    finally:
        handle.close()


def _linked_containers(root: Path, count: int) -> MixedStorageConfig:
    """``count`` folders, each with a capacity, a link and a failure rate of its own."""
    return MixedStorageConfig(
        segment_size_mb=1.0,
        containers=[
            {
                "url": f"file://{root}/c{i}",
                "name": f"c{i}",
                "capacity_mb": 64.0 + 16 * i,
                "afr_pct": 0.5 + 0.25 * i,
                "link": {"bandwidth_mb_s": 400.0 - 50 * i, "latency_ms": 0.2},
            }
            for i in range(count)
        ],
    )


def test_fabric_connector_is_the_runs_storage_fabric(tmp_path: Path) -> None:
    # The run's storage, coding and placement groups, D-Rex included, are what the proxies
    # go through: its containers (links, capacities, failure rates), its coder, its placer.
    run = {
        "storage": _linked_containers(tmp_path, 4),
        "coding": IsalConfig(k=2, m=3),
        "placement": DrexLBConfig(reliability=0.999),
    }
    flow = ProxyStoreConfig(connector="fabric", threshold_bytes=0).joined(run)
    with flow.build() as opened:
        connector = opened.store.connector
        fabric = connector.fabric
        assert [c.spec.link.bandwidth_mb_s for c in fabric.containers] == [400, 350, 300, 250]
        assert [c.spec.afr_pct for c in fabric.containers] == [0.5, 0.75, 1.0, 1.25]
        assert [c.capacity for c in fabric.containers] == [(64 + 16 * i) * 10**6 for i in range(4)]
        assert fabric.coder.name.startswith("isal") and fabric.segment_size == MB
        assert type(fabric.placer).__name__ == "ReliabilityPlacer"
        data = np.random.default_rng(3).bytes(3 * MB)
        key = connector.put(data)
        stat = fabric.stat("proxystore", key.fabric_key)
        for stripe in stat.placement:  # D-Rex's (n, k), on distinct containers
            assert len(set(stripe)) == len(stripe) == stat.m
        # A worker in another process loses a container and still reads: the run counts it.
        lost = next(c for c in fabric.containers if c.name == stat.placement[0][0])
        for chunk in Path(lost.root).rglob("*"):
            if chunk.is_file():
                chunk.unlink()
        assert _digest_read_elsewhere(connector, key) == hashlib.sha256(data).hexdigest()
        metrics = opened.store_metrics()
        assert metrics["data_fabric_degraded_reads"] >= 1
        assert metrics["data_fabric_redundancy_lost"] == 0
        connector.evict(key)


@pytest.mark.service
def test_fabric_connector_over_s3_with_drex(s3_endpoint: str) -> None:
    # The row: federated over the fabric connector with storage=s3, coding=zfec and
    # placement=drex_lb. The proxies' chunks land in the S3 bucket, placed by D-Rex.
    storage = S3StorageConfig(
        endpoint_url=s3_endpoint, bucket="loom-proxies", containers=4, afr_pct=1.5
    )
    drex = DrexLBConfig(reliability=0.999)  # four nodes at 1.5 % a year reach no more
    run = {"storage": storage, "coding": ZfecConfig(k=2, m=3), "placement": drex}
    with ProxyStoreConfig(connector="fabric").joined(run).build() as opened:
        connector = opened.store.connector
        assert {c.spec.url.split("/")[2] for c in connector.fabric.containers} == {"loom-proxies"}
        data = np.random.default_rng(5).bytes(2 * MB)
        key = connector.put(data)
        stat = connector.fabric.stat("proxystore", key.fabric_key)
        assert all(len(set(stripe)) == len(stripe) for stripe in stat.placement)
        assert type(connector).from_config(connector.config()).get(key) == data
        connector.evict(key)
        assert opened.stored() == (0, 0)


def test_fabric_connector_never_shares_a_container_unless_allowed(tmp_path: Path) -> None:
    # Two of four containers down at the start, and a 3-chunk stripe: refused, unless the
    # storage group lets chunks share a container; then counted as lost redundancy.
    for share in (False, True):
        root = tmp_path / str(share)
        storage = _linked_containers(root, 4)
        storage = storage.model_copy(update={"share_containers": share})
        root.mkdir()
        (root / "a-file").write_bytes(b"")
        for i, spec in enumerate(storage.containers[:2]):
            spec.url = f"file://{root}/a-file/c{i}"  # a folder under a file: cannot be made
        run = {"storage": storage, "coding": ZfecConfig(k=2, m=3), "placement": RoundRobinConfig()}
        with ProxyStoreConfig(connector="fabric").joined(run).build() as opened:
            connector = opened.store.connector
            if not share:
                with pytest.raises(InsufficientCapacity, match="share_containers=true"):
                    connector.put(b"x" * 1000)
                assert opened.store_metrics()["data_fabric_containers_down"] == 2
                continue
            key = connector.put(b"x" * 1000)
            assert connector.get(key) == b"x" * 1000
            metrics = opened.store_metrics()
            assert metrics["data_fabric_redundancy_lost"] == 1
            assert metrics["data_fabric_containers_down"] == 2


def test_size_rules_never_proxy_singletons_and_estimate_cheaply() -> None:
    rule = ProxyRule(1000)
    assert not rule(None) and not rule(True) and not rule(10**100)
    assert rule(b"x" * 1000) and not rule(b"x" * 999)
    assert estimate_size(np.zeros(500, dtype=np.float64)) == 4000
    assert estimate_size([b"x" * 10] * 200) == 2000
    assert ProxyRule(10, proxy_types=["numpy.ndarray"])(np.zeros(10)) is True
    assert ProxyRule(10, proxy_types=["numpy.ndarray"])(b"x" * 100) is False
    assert ProxyRule(10, skip_types=["bytes"])(b"x" * 100) is False
    # An object wrapping a buffer is as large as the buffer (attributes are looked into).
    from components.dataflow.workload import make_payload

    assert estimate_size(make_payload("object", 1_000_000, 0)) >= 1_000_000
    assert ProxyRule(100_000)(make_payload("object", 200_000, 0))
    assert estimate_size(int) < 1000  # a class is not its attributes


def _diamond(path: TaskPath, payload: bytes, width: int) -> Any:
    first = path.submit(synthetic_task, 0.0, len(payload), 0, payload)
    middle = [path.submit(synthetic_task, 0.0, len(payload), i, first) for i in range(width)]
    return path.submit(synthetic_task, 0.0, len(payload), 99, *middle)


@pytest.mark.parametrize("executor", ["process", "dask"])
def test_proxies_stay_unresolved_on_the_client(executor: str) -> None:
    config = (
        ProcessExecutorConfig(max_workers=2)
        if executor == "process"
        else DaskExecutorConfig(n_workers=2)
    )
    with ProxyStoreConfig(connector="file").build() as flow, config.build() as pool:
        assert isinstance(flow, ProxyStoreFlow)
        with TaskPath(pool, mover=flow.mover()) as path:
            sink = _diamond(path, b"p" * 300_000, 3)
            assert path.wait(120)
            assert all(t.success for t in path.tasks), [t.error for t in path.tasks]
            assert not is_resolved(sink.value)
            assert flow.client_gets() == 0  # the client never fetched a thing
            assert flow.stored()[0] == 1  # only the unread result is still held
            records = [t.moved for t in path.tasks]
            assert all(r is not None and r["proxied_out"] == 1 for r in records)
            assert records[-1]["proxied_in"] == 3 and records[-1]["bytes_in"] > 900_000
            assert bytes(sink.value)[:1] != b""  # the caller reads it: one get
        assert flow.stored() == (0, 0)


def test_keys_are_released_by_their_last_consumer_and_leave_nothing() -> None:
    with ProxyStoreConfig().build() as flow, ThreadExecutorConfig(max_workers=2).build() as pool:
        payload = b"q" * 200_000
        with TaskPath(pool, mover=flow.mover()) as path:
            head = path.submit(synthetic_task, 0.0, 200_000, 1, payload)
            path.wait()
            late = path.submit(synthetic_task, 0.0, 200_000, 2, head)  # after head finished
            path.wait()
            assert flow.stored()[0] == 1  # head's value went with its last (late) consumer
            assert late.value == synthetic_task(
                0, 200_000, 2, synthetic_task(0, 200_000, 1, payload)
            )
        assert flow.stored() == (0, 0)


def test_failed_tasks_release_their_inputs() -> None:
    failure = FailureSpec(rate=1.0, kind="exception", seed=0)
    pool_config = ProcessExecutorConfig(max_workers=2)
    with ProxyStoreConfig().build() as flow, pool_config.build() as pool:
        path = TaskPath(pool, failure=failure, mover=flow.mover())
        for i in range(4):
            path.submit(synthetic_task, 0.0, 10, i, b"f" * 200_000)
        path.wait(60)
        assert not any(t.success for t in path.tasks)
        assert flow.stored() == (0, 0)  # the payload went with the last failed consumer
        path.close()


def test_on_close_eviction_holds_until_the_path_closes() -> None:
    config = ProxyStoreConfig(eviction="on_close")
    with config.build() as flow, ThreadExecutorConfig(max_workers=2).build() as pool:
        with TaskPath(pool, mover=flow.mover()) as path:
            _diamond(path, b"c" * 150_000, 2)
            path.wait()
            assert flow.stored()[0] == 5  # payload + 4 results
        assert flow.stored() == (0, 0)


def test_many_threads_reading_one_key_with_a_small_cache() -> None:
    # ProxyStore 1.1's LRUCache lists a key twice when two threads set it, then fails with
    # KeyError on eviction; Loom's worker cache does not.
    config = ProxyStoreConfig(cache_size=1)
    with config.build() as flow, ThreadExecutorConfig(max_workers=4).build() as pool:
        with TaskPath(pool, mover=flow.mover()) as path:
            for i in range(300):
                path.submit(synthetic_task, 0.0, 200_000, i % 7, b"z" * 200_000)
            path.wait()
            assert all(t.success for t in path.tasks), {t.error for t in path.tasks}
        assert flow.stored() == (0, 0)
    cache = _Cache(2)
    threads = [
        threading.Thread(target=lambda: [cache.put(k % 5, k) for k in range(2000)])
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache._items) == 2


def test_zmq_is_refused_on_dask_workers_with_a_clear_error() -> None:
    with ProxyStoreConfig(connector="zmq").build() as flow, DaskExecutorConfig().build() as pool:
        with TaskPath(pool, mover=flow.mover()) as path:
            task = path.submit(synthetic_task, 0.0, 10, 0, b"m" * 200_000)
            path.wait(60)
        assert task.error is not None and "does not work on Dask workers" in task.error.message
        assert flow.stored() == (0, 0)


def test_bad_dataflow_settings_are_refused() -> None:
    with pytest.raises(ValidationError, match="connector"):
        ProxyStoreConfig(connector="s3")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        ProxyStoreConfig(threshold_bytes=-1)
    with pytest.raises(ValidationError, match="cannot be proxied"):
        ProxyStoreConfig(proxy_types=["bool"])
    with pytest.raises(ValidationError, match="Extra inputs"):
        ByValueConfig(threshold_bytes=1)  # type: ignore[call-arg]
    unreachable = ProxyStoreConfig(
        connector="redis",
        redis={"host": "127.0.0.1", "port": free_port(), "connect_timeout_s": 0.5},
    )
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=r"cannot reach Redis at 127\.0\.0\.1"):
        unreachable.build().__enter__()
    assert time.monotonic() - start < 10


def _consume(future_proxy: Any, delay_s: float) -> int:
    """A task that starts before its input exists."""
    time.sleep(delay_s)
    from components.dataflow.futures import resolve

    return len(resolve(future_proxy))


def _produce(future: Any, size: int, fail: bool) -> int:
    time.sleep(0.3)
    if fail:
        error = RuntimeError("producer broke")
        future.set_exception(error)
        raise error
    future.set_result(b"f" * size)
    return size


@pytest.mark.parametrize("connector", ["redis", "file", "fabric"])
def test_futures_wake_the_consumer_and_carry_the_producer_error(connector: str) -> None:
    with (
        proxystore(connector=connector).build() as flow,
        ProcessExecutorConfig(max_workers=2).build() as pool,
    ):
        assert isinstance(flow, ProxyStoreFlow)
        good, bad = flow.future(bytes, timeout_s=30), flow.future(bytes, timeout_s=30)
        assert (good.wake is not None) == (connector == "redis")  # pub/sub where it can
        with TaskPath(pool, mover=flow.mover()) as path:
            consumer = path.submit(_consume, good.proxy(), 0.0)  # submitted first
            path.submit(_produce, good, 500_000, False)
            waiting = path.submit(_consume, bad.proxy(), 0.0)
            path.submit(_produce, bad, 10, True)
            assert path.wait(60)
        assert consumer.success and consumer.value == 500_000
        assert consumer.done - consumer.start < 5  # woken, not timed out
        assert waiting.error is not None and "producer broke" in waiting.error.message
        assert "FutureFailed" in waiting.error.type
        flow.store.evict(good.key)
        flow.store.evict(bad.key)
        assert flow.stored() == (0, 0)


@pytest.mark.parametrize("wake", ["redis", "events", "poll"])
def test_a_woken_consumer_looks_twice_where_a_polling_one_looks_often(wake: str) -> None:
    from components.dataflow import futures
    from components.dataflow import wake as wakes
    from components.events.embedded import EmbeddedEventsConfig

    connector = "redis" if wake == "redis" else "file"
    with ExitStack() as stack:
        flow = stack.enter_context(proxystore(connector=connector).build())
        assert isinstance(flow, ProxyStoreFlow)
        channel: Any = "auto" if wake == "redis" else None
        if wake == "events":
            fabric = stack.enter_context(EmbeddedEventsConfig().build())
            channel = wakes.events_wake(fabric.session("loom"), "wake-test")
            stack.callback(wakes.close_all)
        future = flow.future(bytes, timeout_s=30, wake=channel)
        futures.wait_stats.clear()
        got: list[Any] = []
        consumer = threading.Thread(target=lambda: got.append(future.result()))
        consumer.start()
        time.sleep(0.6)  # the consumer is waiting
        began = time.perf_counter()
        future.set_result(b"v" * 1000)
        consumer.join(30)
        latency = time.perf_counter() - began
        flow.store.evict(future.key)
    assert got == [b"v" * 1000]
    if wake == "poll":
        assert futures.wait_stats["looks"] > 8  # 1 ms, 2 ms, ... 50 ms over 0.6 s
    else:
        # One look before the notice, one after it: no polling, and no notice missed.
        assert futures.wait_stats["looks"] == 2, futures.wait_stats
        assert futures.wait_stats["woken"] == 1 and futures.wait_stats["missed"] == 0
        assert latency < 2.5  # woken by the notice, not by the 5 s recheck


@pytest.mark.parametrize("connector", ["file", "redis", "fabric"])
def test_a_path_frees_what_a_dead_worker_stored_and_nothing_older(connector: str) -> None:
    with proxystore(connector=connector).build() as flow, ThreadExecutorConfig().build() as pool:
        assert isinstance(flow, ProxyStoreFlow)
        older = flow.store.connector.put(b"stored before the path opened")
        mover = flow.mover()
        with TaskPath(pool, mover=mover) as path:
            path.submit(len, b"k" * 200_000)
            # A worker that stored its result and died before returning it: only the
            # store knows the key.
            flow.store.connector.put(b"r" * 1000)
            owner = flow.owned(b"o" * 10)  # met by the flow: an owner's, not an orphan
            path.wait()
        assert mover.orphans_evicted == 1
        assert flow.store.connector.exists(older) and flow.store.connector.exists(owner.key)
        assert flow.stored()[0] == 2


def test_futures_need_a_connector_that_reserves_keys() -> None:
    with ProxyStoreConfig(connector="zmq").build() as flow:
        assert isinstance(flow, ProxyStoreFlow)
        with pytest.raises(ValueError, match="futures need a connector"):
            flow.future()


def test_ownership_frees_at_the_last_returned_borrow_and_refuses_use_after_release() -> None:
    from components.dataflow._ownership import ReferenceReleased

    with ProxyStoreConfig().build() as flow, ProcessExecutorConfig(max_workers=2).build() as pool:
        assert isinstance(flow, ProxyStoreFlow)
        owner = flow.owned(b"o" * 300_000)
        with TaskPath(pool, mover=flow.mover()) as path:
            tasks = [path.submit(len, owner.borrow()) for _ in range(3)]
            assert owner.borrows == 3
            owner.release()  # the owner is done; the borrows are still out
            assert not owner.evicted
            path.wait()
            assert [t.value for t in tasks] == [300_000] * 3
        assert owner.borrows == 0 and owner.evicted  # the third task's return freed it
        assert flow.stored() == (0, 0)
        with pytest.raises(ReferenceReleased, match="already released"):
            owner.borrow()
        with pytest.raises(ReferenceReleased):
            owner.value()
        with flow.owned([1, 2, 3]) as scoped:
            assert scoped.value() == [1, 2, 3]
        assert scoped.evicted and flow.stored() == (0, 0)


@pytest.mark.parametrize(
    ("mode", "wake"), [("sequential", "auto"), ("pipelined", "auto"), ("pipelined", "events")]
)
def test_futures_chain_verifies_and_fails_fast(mode: str, wake: str, tmp_path: Path) -> None:
    from components.base import RunContext
    from components.events.embedded import EmbeddedEventsConfig
    from components.scenarios.futures_chain import FuturesChainConfig

    with ExitStack() as stack:
        # Redis pub/sub on Dask; the event fabric over the file connector on processes.
        flow = stack.enter_context(
            ProxyStoreConfig(connector="redis" if wake == "auto" else "file").build()
        )
        pool = stack.enter_context(
            DaskExecutorConfig(n_workers=1, threads_per_worker=4).build()
            if wake == "auto"
            else ProcessExecutorConfig(max_workers=4).build()
        )
        components = {"executor": pool, "dataflow": flow}
        if wake == "events":
            components["events"] = stack.enter_context(EmbeddedEventsConfig().build())
        ctx = RunContext(components, seed=1, trial=0, run_dir=tmp_path)
        config = FuturesChainConfig(mode=mode, tasks=4, task_s=0.1, data_bytes=200_000, wake=wake)
        assert ("events" in config.needs()) == (wake == "events")
        config.build().run(ctx)
        assert ctx.metrics["result_verified"] == 1 and ctx.metrics["store_keys_leaked"] == 0
        broken = RunContext(components, seed=1, trial=1, run_dir=tmp_path)
        FuturesChainConfig(
            mode=mode, tasks=4, task_s=0.1, data_bytes=1000, fail_at=1, timeout_s=600, wake=wake
        ).build().run(broken)
        assert broken.metrics["tasks_failed"] == 3 and broken.metrics["result_verified"] == 0
        rows = [
            json.loads(line) for line in (tmp_path / "tasks.jsonl").read_text().split("\n") if line
        ]
        errors = [r["exception"]["message"] for r in rows if r["exception"]]
        assert all("chain task 1 failed" in e or "parent task" in e for e in errors), errors
        assert broken.metrics["store_keys_leaked"] == 0


@pytest.mark.parametrize("broker", ["events", "redis"])
def test_a_stream_hands_tasks_proxies_and_leaves_nothing(broker: str, tmp_path: Path) -> None:
    from components.base import RunContext
    from components.events.embedded import EmbeddedEventsConfig
    from components.scenarios.stream import StreamConfig

    with ExitStack() as stack:
        flow = stack.enter_context(ProxyStoreConfig().build())
        pool = stack.enter_context(ProcessExecutorConfig(max_workers=2).build())
        events = stack.enter_context(EmbeddedEventsConfig().build()) if broker == "events" else None
        components = {"executor": pool, "dataflow": flow, "events": events}
        ctx = RunContext(components, seed=1, trial=0, run_dir=tmp_path)
        StreamConfig(broker=broker, items=12, item_bytes=300_000).build().run(ctx)
        assert ctx.metrics["result_verified"] == 1 and ctx.metrics["tasks_failed"] == 0
        assert ctx.metrics["data_proxied_inputs"] == 12  # each task read its item's proxy
        assert ctx.metrics["store_keys_leaked"] == 0  # single-consumer items go once read
    with pytest.raises(ValidationError, match="method=inline: a message holds at most"):
        StreamConfig(method="inline", item_bytes=2_000_000)


def test_a_proxy_without_a_cached_class_is_not_resolved_by_submit() -> None:
    # isinstance(proxy, TaskHandle) would read __class__ and resolve (and, for an evict-on-
    # resolve proxy, evict) it on the client; the task path looks with type() instead.
    with ProxyStoreConfig().build() as flow, ThreadExecutorConfig().build() as pool:
        assert isinstance(flow, ProxyStoreFlow)
        proxy = flow.store.proxy(b"n" * 200_000, evict=True, populate_target=False)
        with TaskPath(pool, mover=flow.mover()) as path:
            task = path.submit(len, proxy)
            assert not is_resolved(proxy)
            path.wait()
        assert task.value == 200_000 and flow.stored() == (0, 0)


def test_fabric_connectors_in_two_processes_share_capacity(tmp_path: Path) -> None:
    # Each process counts only its own writes; a writer that thinks the containers are full
    # measures them again, and sees what another process deleted.
    from components.dataflow.fabric_connector import StorageFabricConnector

    containers = [{"url": f"file://{tmp_path}/c{i}", "capacity_mb": 3.0} for i in range(3)]
    writer = StorageFabricConnector(
        containers, str(tmp_path / "catalog.sqlite"), CODING, PLACEMENT, owner=True
    )
    other = StorageFabricConnector(**writer.config())
    keys = [writer.put(b"w" * MB) for _ in range(4)]  # 4 MB x 1.5 of 9 MB
    for key in keys:
        other.evict(key)  # deleted elsewhere: the writer's count does not know
    more = [writer.put(b"v" * MB) for _ in range(4)]
    assert all(writer.get(k) == b"v" * MB for k in more)
    writer.close()
    other.close()


def _scaled(data: bytes, *, table: bytes, factor: int) -> int:
    return len(data) * factor + len(table)


def test_map_results_and_keyword_arguments_are_released_too() -> None:
    # ProxyStore's Dask plugin never evicts proxied keyword arguments of map() (and keeps
    # map results of pure functions); here both are counted and released.
    table = b"t" * 300_000
    with ProxyStoreConfig().build() as flow, ProcessExecutorConfig(max_workers=2).build() as pool:
        with TaskPath(pool, mover=flow.mover()) as path:
            items = [b"i" * 200_000 + bytes([i]) for i in range(5)]
            handles = path.map(_scaled, items, kwargs={"table": table, "factor": 2})
            total = path.submit(synthetic_task, 0.0, 200_000, 0, *path.map(bytes, items))
            path.wait()
            assert [h.value for h in handles] == [2 * 200_001 + 300_000] * 5
            assert total.success
            assert flow.stored()[0] == 1  # only the unread total is held
        assert flow.stored() == (0, 0)
