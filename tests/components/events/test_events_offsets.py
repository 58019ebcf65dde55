"""Consumers never commit past a gap in a partition's offsets, and re-read it for a while.

Real gaps come from a transactional producer: each commit marker takes an offset that no
event has, so a consumer sees 0-4, 6-10, 12-16. tansu can also show a later batch before an
earlier one under concurrent producers (``components/events/offsets.py``); that race is
not reproducible on demand, the marker gaps are.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer

from components.events._broker import TansuBroker
from components.events.embedded import EmbeddedEventsConfig
from components.events.kafka import KafkaEventsConfig

pytestmark = [pytest.mark.service]

FAST_GROUPS = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 100}


@pytest.fixture(scope="module")
def broker() -> Iterator[TansuBroker]:
    with TansuBroker() as process:
        yield process


def _transactions(bootstrap: str, topic: str, rounds: int, size: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": uuid.uuid4().hex})
    producer.init_transactions(10)
    for r in range(rounds):
        producer.begin_transaction()
        for i in range(size):
            producer.produce(topic, f"{r}-{i}".encode())
        producer.commit_transaction(10)


def test_a_gap_is_reread_then_accepted_and_never_committed_past(
    broker: TansuBroker, caplog: pytest.LogCaptureFixture
) -> None:
    name = "tx" + uuid.uuid4().hex[:6]
    topic = f"alice.{name}"
    config = KafkaEventsConfig(
        bootstrap_servers=broker.bootstrap_servers,
        principals=["alice"],
        consumer={**FAST_GROUPS, "gap_wait_ms": 300},
        topics=[{"name": name, "partitions": 1}],
    )
    with config.build() as fabric:
        alice = fabric.session("alice")
        _transactions(broker.bootstrap_servers, topic, rounds=3, size=5)
        consumer = alice.consumer([name], group="g")
        first: list[bytes] = []
        for _ in range(100):
            first = consumer.poll(1000, 0.1).values()
            if first:
                break
        # The first batch stops at the gap after offset 4; what is committed stops there too.
        assert first == [f"0-{i}".encode() for i in range(5)]
        consumer.commit()
        assert consumer.committed() == {(topic, 0): 5}
        got = list(first)
        with caplog.at_level(logging.WARNING, logger="components.events.offsets"):
            deadline = time.monotonic() + 10
            while len(got) < 15 and time.monotonic() < deadline:
                got += consumer.poll(1000, 0.1).values()
        assert got == [f"{r}-{i}".encode() for r in range(3) for i in range(5)]
        assert consumer.rereads > 0
        assert "offsets jump from 5 to 6" in caplog.text


def test_gaps_are_accepted_at_once_when_off(broker: TansuBroker) -> None:
    name = "tx" + uuid.uuid4().hex[:6]
    topic = f"alice.{name}"
    config = KafkaEventsConfig(
        bootstrap_servers=broker.bootstrap_servers,
        principals=["alice"],
        consumer=FAST_GROUPS,
        topics=[{"name": name, "partitions": 1}],
    )
    with config.build() as fabric:
        assert fabric.gap_wait_s() == 0  # a Kafka cluster's offsets are dense
        _transactions(broker.bootstrap_servers, topic, rounds=2, size=3)
        consumer = fabric.session("alice").consumer([name], group="g")
        got: list[bytes] = []
        for _ in range(100):
            got += consumer.poll(1000, 0.1).values()
            if len(got) >= 6:
                break
        assert got == [f"{r}-{i}".encode() for r in range(2) for i in range(3)]
        assert consumer.rereads == 0


def test_the_embedded_broker_rereads_gaps_by_default() -> None:
    assert EmbeddedEventsConfig().build().gap_wait_s() == 5.0


def test_a_group_reading_from_the_end_does_not_reread_the_log(broker: TansuBroker) -> None:
    # A group without commits and auto_offset_reset=latest starts wherever the broker says
    # the log ends. The guard must take that as the start, not the log start: otherwise the
    # first event looks like a jump and the whole log is read again. (tansu's idea of the
    # end lags, so such a group may see some old events; never the first one.)
    name = "tx" + uuid.uuid4().hex[:6]
    config = KafkaEventsConfig(
        bootstrap_servers=broker.bootstrap_servers,
        principals=["alice"],
        consumer={**FAST_GROUPS, "gap_wait_ms": 300, "auto_offset_reset": "latest"},
        topics=[{"name": name, "partitions": 1}],
    )
    with config.build() as fabric:
        alice = fabric.session("alice")
        producer = alice.producer()
        for i in range(10):
            producer.produce(name, f"old-{i}".encode())
        producer.flush()
        consumer = alice.consumer([name], group="tail")
        got = consumer.wait_assigned(1).values() + consumer.poll(1000, 1.0).values()
        for i in range(5):
            producer.produce(name, f"new-{i}".encode())
        producer.flush()
        deadline = time.monotonic() + 10
        while b"new-4" not in got and time.monotonic() < deadline:
            got += consumer.poll(1000, 0.1).values()
        assert b"old-0" not in got
        assert got[-5:] == [f"new-{i}".encode() for i in range(5)]
        assert len(got) == len(set(got))
        assert consumer.rereads == 0
