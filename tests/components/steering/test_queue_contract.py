"""Loom's Colmena queues keep Colmena's queue contract, over pipes, Redis and the event fabric.

What Colmena's own suite asks of every queue: its topics, topics kept apart, ``flush``
empties what was sent, the kill signal, and a queue still usable after pickling into another
process (how a task server in another process gets it).
"""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Iterator
from typing import Any

import pytest
from colmena.exceptions import KillSignalException, TimeoutException
from colmena.queue.base import ColmenaQueues

from components.events.embedded import EmbeddedEventsConfig
from components.steering.queues import FabricQueues, LockedPipeQueues, redis_queues
from components.storage.redis_peer import redis_server

KINDS = ["pipes", "redis", "fabric"]
pytestmark = [pytest.mark.service]


@pytest.fixture(scope="module")
def fabric() -> Iterator[Any]:
    with EmbeddedEventsConfig().build() as opened:
        yield opened


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    with redis_server(2**20) as client:
        yield int(client.connection_pool.connection_kwargs["port"])


@pytest.fixture(params=KINDS)
def queues(request: pytest.FixtureRequest, redis_port: int, fabric: Any) -> Iterator[ColmenaQueues]:
    if request.param == "pipes":
        yield LockedPipeQueues(["a", "b"])
    elif request.param == "redis":
        yield redis_queues("127.0.0.1", redis_port, ["a", "b"])
    else:
        made = FabricQueues(fabric.session("loom"), ["a", "b"])
        try:
            yield made
        finally:
            made.close()


def test_topics(queues: ColmenaQueues) -> None:
    assert queues.topics == {"default", "a", "b"}


@pytest.mark.parametrize("topic", ["default", "a"])
def test_a_result_comes_back_on_its_own_topic(queues: ColmenaQueues, topic: str) -> None:
    queues.send_inputs(1, method="method", topic=topic)
    got_topic, task = queues.get_task(timeout=30)
    assert got_topic == topic
    task.deserialize()
    task.set_result(1, 1)
    task.serialize()
    queues.send_result(task)
    with pytest.raises(TimeoutException):
        queues.get_result(timeout=0.5, topic="b")
    result = queues.get_result(topic=topic, timeout=30)
    assert result is not None and result.value == 1


def test_flush_empties_requests_and_results(queues: ColmenaQueues) -> None:
    queues.send_inputs(1, method="method")
    queues.flush()
    with pytest.raises(TimeoutException):
        queues.get_task(timeout=0.5)
    queues.send_inputs(1, method="method")
    topic, task = queues.get_task(timeout=30)
    queues.send_result(task)
    queues.flush()
    with pytest.raises(TimeoutException):
        queues.get_result(topic, timeout=0.5)


def test_the_kill_signal_reaches_the_server(queues: ColmenaQueues) -> None:
    queues.send_kill_signal()
    with pytest.raises(KillSignalException):
        queues.get_task(timeout=30)


def _serve_one(serialized: bytes) -> None:
    copy: ColmenaQueues = pickle.loads(serialized)
    _, task = copy.get_task(timeout=30)
    assert task.method == "test"
    task.deserialize()
    task.set_result(task.args[0] + 1, 0.1)
    task.serialize()
    copy.send_result(task)


def test_a_pickled_queue_serves_from_another_process(queues: ColmenaQueues) -> None:
    serialized = pickle.dumps(queues)
    # Pipe ends travel only to a child forked from their process, as in Colmena's own test;
    # the network queues go anywhere, and a fork would copy librdkafka's locks mid-use.
    method = "fork" if isinstance(queues, LockedPipeQueues) else "spawn"
    child = multiprocessing.get_context(method).Process(target=_serve_one, args=(serialized,))
    child.start()
    queues.send_inputs(41, method="test")
    result = queues.get_result(timeout=60)
    child.join(60)
    assert child.exitcode == 0
    assert result is not None and result.success and result.value == 42


def test_a_pickled_queue_serves_from_another_process_by_reference(fabric: Any) -> None:
    # Every message over a 64-byte limit: each goes through the overflow store, which the
    # copy in the other process rebuilds from its config.
    queues = FabricQueues(fabric.session("loom"), ["a"], max_message_bytes=64)
    try:
        test_a_pickled_queue_serves_from_another_process(queues)
        assert queues.by_reference >= 1
    finally:
        queues.close()
