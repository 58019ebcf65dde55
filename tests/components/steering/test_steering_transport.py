"""Steering over Redis and the event fabric, outside events, and large values by reference."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from colmena.exceptions import TimeoutException

from components.events.embedded import EmbeddedEventsConfig
from components.events.fabric import KafkaEventFabric
from components.executor.thread import ThreadExecutor
from components.steering.ackley import evaluate, runtimes
from components.steering.digits import BOUND, hyperparameters, load, train_digits
from components.steering.protocol import CampaignSettings
from components.steering.queues import FabricQueues, LockedPipeQueues, redis_queues
from components.steering.server import ExecutorTaskServer
from components.steering.surrogate import rank
from framework import registry

# Every steering option's Thinker, from the registry (as a run builds it).
POLICIES = {
    kind: registry.config_model("steering", kind)().build().thinker
    for kind in registry.options("steering")
}

pytestmark = [pytest.mark.service]


@pytest.fixture(scope="module")
def fabric() -> Iterator[KafkaEventFabric]:
    groups = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 100}
    with EmbeddedEventsConfig(principals=["loom", "instrument"], consumer=groups).build() as opened:
        yield opened


def _run(queues: Any, policy: str, settings: CampaignSettings, during: Any = None) -> Any:
    """Serve ``queues`` on two threads, run the policy's Thinker; ``during(thinker)`` meanwhile."""
    with ThreadExecutor(2) as executor:
        server = ExecutorTaskServer(queues, [evaluate, rank, train_digits], executor)
        server.serve()
        thinker = POLICIES[policy](queues, settings)
        thinker.start()
        if during is not None:
            during(thinker)
        thinker.join(120)
        assert not thinker.is_alive(), "the campaign did not finish"
        queues.send_kill_signal()
        server.wait(10)
    return thinker


def _settings(evaluations: int, **extra: Any) -> CampaignSettings:
    options = extra.pop("options", {"min_training": 4})
    return CampaignSettings(
        evaluations, 2, 4, runtimes(evaluations, 0.005, 0.3, 0), 0, options=options, **extra
    )


def _values(thinker: Any) -> list[float]:
    return sorted(float(r.value) for r in thinker.results)


def test_the_fabric_queues_carry_a_campaign_as_the_pipes_do(fabric: KafkaEventFabric) -> None:
    queues = FabricQueues(fabric.session("loom"), ["ml"])
    try:
        over_fabric = _run(queues, "random", _settings(12))
        names = fabric.topic_names()
        assert f"loom.{queues.prefix}-requests" in names
    finally:
        queues.close()
    assert f"loom.{queues.prefix}-requests" not in fabric.topic_names()  # removed at close
    over_pipes = _run(LockedPipeQueues(["ml"]), "random", _settings(12))
    assert len(over_fabric.results) == 12 and all(r.success for r in over_fabric.results)
    assert _values(over_fabric) == _values(over_pipes)  # same seed, same points, same values
    stamps = [r.timestamp for r in over_fabric.results]
    assert all(
        s.created <= s.compute_started <= s.compute_ended <= s.result_received for s in stamps
    )


def test_the_fabric_queues_carry_arrays_and_proxies(
    fabric: KafkaEventFabric, tmp_path: Path
) -> None:
    # Colmena's default is JSON, which has no arrays, tuples or proxies: the digits campaign
    # (arrays as task arguments, by reference over ProxyStore) failed over the fabric.
    from proxystore.connectors.file import FileConnector
    from proxystore.store import Store, unregister_store

    store = Store("steer-fabric", FileConnector(str(tmp_path / "store")), register=True)
    queues = FabricQueues(
        fabric.session("loom"), ["ml"], proxystore_name=store.name, proxystore_threshold=100_000
    )
    settings = CampaignSettings(
        4,
        2,
        4,
        [],
        0,
        options={"min_training": 2},
        method="train_digits",
        bound=BOUND,
        task_kwargs={"data": load(0)},
    )
    try:
        thinker = _run(queues, "random", settings)
    finally:
        queues.close()
        unregister_store(store)
        store.close()
    assert not thinker.agent_errors
    assert len(thinker.results) == 4 and all(r.success for r in thinker.results)
    assert all(0 < float(r.value) < 1 for r in thinker.results)  # a digits error rate


def test_messages_over_the_broker_limit_go_by_reference_on_their_own(
    fabric: KafkaEventFabric,
) -> None:
    # Every request and result is over a 200-byte limit: each goes through the overflow
    # store, the campaign completes, and nothing is left in the store.
    queues = FabricQueues(fabric.session("loom"), ["ml"], max_message_bytes=200)
    folder = queues._overflow_folder
    assert folder is not None
    try:
        thinker = _run(queues, "random", _settings(4))
        left = list(Path(folder).iterdir())
    finally:
        queues.close()
    assert not thinker.agent_errors, thinker.agent_errors
    assert len(thinker.results) == 4 and all(r.success for r in thinker.results)
    assert queues.by_reference >= 4  # at least each request (results are counted elsewhere)
    assert left == [] and not Path(folder).exists()


def test_events_from_another_producer_steer_the_campaign(fabric: KafkaEventFabric) -> None:
    """An instrument's events trigger a retrain (reallocation never retrains on its own
    here) and then end the campaign early."""
    instrument = fabric.session("instrument")
    topic = f"steer{time.monotonic_ns() % 10**8}"
    name = instrument.create_topic(topic)
    instrument.grant(topic, "loom", read=True)
    outside = fabric.session("loom").consumer([name], group="steer", value_format="json")
    outside.wait_assigned(1)
    producer = instrument.producer(value_format="json")
    options = {"min_training": 4, "retrain_after": 10_000, "pool": 4000}

    def steer(thinker: Any) -> None:
        _until(lambda: len(thinker.y) >= 6)
        assert thinker.retrains == 0
        producer.produce(topic, {"event": "retrain"})
        producer.flush()
        _until(lambda: thinker.retrains >= 1)
        producer.produce(topic, {"event": "stop"})
        producer.produce(topic, {"note": "ignored, only counted"})
        producer.flush()

    long = CampaignSettings(4000, 2, 4, [0.02] * 4000, 0, options=options, outside=outside)
    thinker = _run(LockedPipeQueues(["ml"]), "reallocation", long, during=steer)
    outside.close()
    assert thinker.retrains >= 1 and len(thinker.results) < 1000
    assert thinker.outside_events >= 2
    assert thinker.counter.available_slots("sim") == 2  # every slot came back after the stop


def _until(check: Any, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_redis_queues_from_a_server_started_for_the_run() -> None:
    from components.storage.redis_peer import redis_server

    with redis_server(2**20) as client:
        port = int(client.connection_pool.connection_kwargs["port"])
        first = redis_queues("127.0.0.1", port, ["ml"])
        second = redis_queues("127.0.0.1", port, ["ml"])
        assert first.prefix != second.prefix  # Colmena's default prefix is one per process
        thinker = _run(first, "streaming", _settings(12))
        assert client.llen(f"{first.prefix}_requests") == 0
    assert len(thinker.results) == 12 and all(r.success for r in thinker.results)
    assert _values(thinker)[0] < 22


def test_a_redis_server_that_waits_longer_than_redis_py_s_socket_timeout_still_serves() -> None:
    # redis-py 8 reads with a 5 s socket timeout; Colmena's RedisQueues block in BLPOP for ever,
    # so a server idle for 5 s died and the campaign hung. Loom's queues have no socket timeout.
    from components.storage.redis_peer import redis_server

    with redis_server(2**20) as client, ThreadExecutor(1) as executor:
        port = int(client.connection_pool.connection_kwargs["port"])
        queues = redis_queues("127.0.0.1", port, ["ml"])
        server = ExecutorTaskServer(queues, [evaluate], executor)
        server.serve()
        with pytest.raises(TimeoutException):  # not redis' TimeoutError after 5 s
            queues.get_result(timeout=6)
        queues.send_inputs([0.0] * 4, 0.0, method="evaluate")
        result = queues.get_result(timeout=30)
        queues.send_kill_signal()
        server.wait(10)
    assert result is not None and result.success and abs(float(result.value)) < 1e-9


def test_digits_tasks_train_real_models_and_take_their_data_by_reference() -> None:
    from proxystore.connectors.file import FileConnector
    from proxystore.store import Store, unregister_store

    data = load(0)
    assert data[0].shape == (1198, 64) and data[2].shape == (599, 64)
    assert hyperparameters([-1, -1, -1, -1]) == {
        "hidden": 8,
        "alpha": 1e-6,
        "learning_rate": 1e-4,
        "epochs": 2,
    }
    good = train_digits([0.5, -0.5, -0.2, 0.8], data)
    assert good < 0.06 < train_digits([-1, 1, -1, -1], data)  # a real model, a real score
    tmp = pytest.importorskip("tempfile").mkdtemp()
    store = Store("steer-digits", FileConnector(tmp), metrics=True, register=True)
    try:
        queues = LockedPipeQueues(["ml"], proxystore_name=store.name, proxystore_threshold=100_000)
        settings = CampaignSettings(
            8,
            2,
            4,
            [],
            0,
            options={"min_training": 4},
            method="train_digits",
            bound=BOUND,
            task_kwargs={"data": data},
        )
        thinker = _run(queues, "streaming", settings)
        puts = store.metrics.aggregate_times()["store.put"].count if store.metrics else 0
        import os

        left = os.listdir(tmp)
    finally:
        unregister_store(store)
        store.close()
    assert len(thinker.results) == 8 and all(r.success for r in thinker.results)
    assert all(0 <= v <= 1 for v in _values(thinker))
    assert puts >= 8  # each task's data went to the store, not through the pipe
    assert max(r.message_sizes["inputs"] for r in thinker.results) > 400_000
    assert left == []  # Colmena evicts an input once the worker resolved it
    assert np.isfinite([r.time.deserialize_inputs for r in thinker.results]).all()
