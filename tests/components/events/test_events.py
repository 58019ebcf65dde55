"""The event fabric against the embedded broker and against a broker process on loopback.

Every contract test runs twice: ``embedded`` (the fabric starts its own tansu broker) and
``kafka`` (the fabric connects by bootstrap address to a broker this module's fixture
started), so the same confluent-kafka path is tested both ways.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from components.base import RunContext, SilentProgress
from components.events._broker import TansuBroker
from components.events.clients import DLQ_ERROR
from components.events.embedded import EmbeddedEventsConfig
from components.events.fabric import KafkaEventFabric
from components.events.kafka import KafkaEventsConfig
from components.events.protocol import Access, BrokerUnreachable, TopicAccessDenied, TopicError
from components.events.topology import TriggerSpec
from components.faults import Fault, FaultSchedule
from components.loopback import free_port
from components.scenarios.event_throughput import EventThroughputConfig
from components.scenarios.event_triggers import EventTriggersConfig

pytestmark = [pytest.mark.service]

FAST_GROUPS = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 100}
TOPOLOGY: dict[str, Any] = {"principals": ["alice", "bob", "eve"], "consumer": FAST_GROUPS}


def _name() -> str:
    return "t" + uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def broker() -> Iterator[TansuBroker]:
    with TansuBroker() as process:
        yield process


@pytest.fixture(params=["embedded", "kafka"])
def fabric(request: pytest.FixtureRequest, broker: TansuBroker) -> Iterator[KafkaEventFabric]:
    if request.param == "embedded":
        config: Any = EmbeddedEventsConfig(**TOPOLOGY)
    else:
        config = KafkaEventsConfig(bootstrap_servers=broker.bootstrap_servers, **TOPOLOGY)
    with config.build() as opened:
        yield opened


def _drain(consumer: Any, count: int, polls: int = 100) -> list[Any]:
    got: list[Any] = []
    for _ in range(polls):
        got += consumer.poll(1000, 0.1)
        if len(got) >= count:
            break
    return got


def test_topic_lifecycle(fabric: KafkaEventFabric) -> None:
    alice = fabric.session("alice")
    name = _name()
    full = alice.create_topic(name, partitions=3, retention_ms=3_600_000)
    assert full == f"alice.{name}"
    assert full in alice.list_topics()
    info = alice.describe_topic(name)
    assert (info.owner, info.partitions, info.retention_ms) == ("alice", 3, 3_600_000)
    with pytest.raises(TopicError, match="already exists"):
        alice.create_topic(name)
    with pytest.raises(TopicAccessDenied, match="only its owner 'alice'"):
        fabric.session("bob").delete_topic(full)
    with pytest.raises(TopicAccessDenied):
        fabric.session("bob").create_topic(f"alice.{_name()}")
    assert full not in fabric.session("bob").list_topics()
    alice.delete_topic(name)
    assert full not in alice.list_topics()
    with pytest.raises(TopicError, match="invalid"):
        alice.create_topic("bad name!")


def test_grants_are_enforced_and_revoke_takes_effect(fabric: KafkaEventFabric) -> None:
    alice, bob = fabric.session("alice"), fabric.session("bob")
    topic = alice.create_topic(_name(), partitions=2)
    producer = bob.producer()
    with pytest.raises(TopicAccessDenied, match="may not write"):
        producer.produce(topic, b"denied")
    with pytest.raises(TopicAccessDenied, match="may not read"):
        bob.consumer([topic], group="g")
    assert alice.grant(topic, "bob", read=True, write=True) == Access.READ_WRITE
    assert alice.list_grants(topic) == {"bob": Access.READ_WRITE}
    for i in range(20):
        producer.produce(topic, f"e{i}".encode(), key=b"k", headers={"h": b"1"})
    producer.flush()
    consumer = bob.consumer([topic], group="g")
    events = _drain(consumer, 20)
    assert sorted(e.value for e in events) == sorted(f"e{i}".encode() for i in range(20))
    assert events[0].headers == {"h": b"1"} and events[0].key == b"k"
    consumer.commit()
    assert topic in bob.list_topics()
    with pytest.raises(TopicAccessDenied):
        fabric.session("eve").producer().produce(topic, b"x")
    alice.revoke(topic, "bob", read=True, write=True)
    with pytest.raises(TopicAccessDenied, match="may not write"):
        producer.produce(topic, b"after revoke")
    with pytest.raises(TopicAccessDenied, match="may not read"):
        consumer.poll(1, 0.05)
    assert alice.list_grants(topic) == {}
    with pytest.raises(TopicAccessDenied, match="unknown token"):
        fabric.login("not-a-token")


def test_json_values_and_malformed_events_go_to_the_dead_letter_topic(
    fabric: KafkaEventFabric,
) -> None:
    alice = fabric.session("alice")
    topic = alice.create_topic(_name())
    dlq = alice.create_topic(_name())
    good, raw = alice.producer(value_format="json"), alice.producer()
    good.produce(topic, {"n": 1})
    good.flush()
    raw.produce(topic, b"{not json")
    raw.flush()
    good.produce(topic, {"n": 2})
    good.flush()
    consumer = alice.consumer([topic], group="j", value_format="json", dead_letter_topic=dlq)
    events = _drain(consumer, 2)
    assert [e.value for e in events] == [{"n": 1}, {"n": 2}]  # the consumer kept going
    assert consumer.malformed == 1
    consumer.close()
    dead = _drain(alice.consumer([dlq], group="d"), 1)
    assert [e.value for e in dead] == [b"{not json"]
    assert b"not JSON" in dead[0].headers[DLQ_ERROR]


def test_produce_many_sends_the_same_events_and_checks_grants(fabric: KafkaEventFabric) -> None:
    alice, bob = fabric.session("alice"), fabric.session("bob")
    topic = alice.create_topic(_name(), partitions=2)
    with pytest.raises(TopicAccessDenied, match="may not write"):
        bob.producer().produce_many(topic, [b"denied"])
    producer = alice.producer(value_format="json")
    assert producer.produce_many(topic, ({"n": i} for i in range(300)), [b"a", b"b"] * 150) == 300
    producer.flush()
    events = _drain(alice.consumer([topic], group="m", value_format="json"), 300)
    assert sorted(e.value["n"] for e in events) == list(range(300))
    assert {e.key for e in events if e.value["n"] % 2} == {b"b"}
    with pytest.raises(ValueError, match="2 values but 1 keys"):  # checked before sending
        producer.produce_many(topic, [{"n": 0}, {"n": 1}], [b"a"])


def test_poll_returns_with_the_first_event_not_at_its_timeout(fabric: KafkaEventFabric) -> None:
    # librdkafka's consume(n, t) holds a partial batch until t; poll must not.
    alice = fabric.session("alice")
    topic = alice.create_topic(_name())
    consumer = alice.consumer([topic], group=_name())
    consumer.wait_assigned(1)
    producer = alice.producer()

    def send() -> None:
        producer.produce(topic, b"late")
        producer.flush()

    threading.Timer(0.3, send).start()
    began = time.monotonic()
    batch = consumer.poll(500, 10.0)
    waited = time.monotonic() - began
    assert [e.value for e in batch] == [b"late"]
    assert waited < 5, waited


def test_a_full_local_queue_waits_instead_of_failing(fabric: KafkaEventFabric) -> None:
    alice = fabric.session("alice")
    topic = alice.create_topic(_name())
    producer = alice.producer(**{"queue.buffering.max.messages": 5})
    for i in range(100):
        producer.produce(topic, f"one-{i}".encode(), headers={"h": b"1"})
    assert producer.produce_many(topic, (f"many-{i}".encode() for i in range(100))) == 100
    producer.flush()
    events = _drain(alice.consumer([topic], group="q"), 200)
    assert len({e.value for e in events}) == 200


def test_two_consumers_share_partitions_and_take_over_on_leave(fabric: KafkaEventFabric) -> None:
    alice = fabric.session("alice")
    topic = alice.create_topic(_name(), partitions=4)
    first, second = (alice.consumer([topic], group="pair") for _ in range(2))
    for _ in range(200):
        first.poll(100, 0.02)
        second.poll(100, 0.02)
        if len(first.assigned) + len(second.assigned) == 4 and first.assigned and second.assigned:
            break
    assert len(first.assigned) == 2 and len(second.assigned) == 2
    producer = alice.producer()
    for i in range(400):
        producer.produce(topic, str(i).encode(), key=str(i).encode())
    producer.flush()
    seen: list[bytes] = []
    for _ in range(100):
        for consumer in (first, second):
            batch = consumer.poll(500, 0.05)
            seen += batch.values()
            consumer.commit()
        if len(seen) >= 400:
            break
    assert sorted(seen) == sorted(str(i).encode() for i in range(400))
    second.close()
    for i in range(400, 500):
        producer.produce(topic, str(i).encode(), key=str(i).encode())
    producer.flush()
    rest = _drain(first, 100)
    assert len(first.assigned) == 4
    assert sorted(e.value for e in rest) == sorted(str(i).encode() for i in range(400, 500))


def test_unreachable_broker_is_a_clear_error() -> None:
    config = KafkaEventsConfig(bootstrap_servers=f"127.0.0.1:{free_port()}", connect_timeout_s=1)
    with pytest.raises(BrokerUnreachable, match=r"no Kafka broker answered at 127\.0\.0\.1"):
        config.build().__enter__()


def _trigger(name: str, topic: str, **extra: Any) -> TriggerSpec:
    return TriggerSpec(name=name, topic=topic, **extra)


def test_trigger_filters_retries_and_dead_letters(tmp_path: Path) -> None:
    config = EmbeddedEventsConfig(
        principals=["alice"],
        consumer=FAST_GROUPS,
        topics=[{"name": "sensors", "partitions": 2}],
        triggers=[
            {
                "name": "created",
                "topic": "sensors",
                "filter": {"value": {"event_type": ["created"]}},
                "handler": "components.events.handlers:flaky",
                "batch_size": 1,
                "concurrency": 2,
                "max_retries": 2,
                "retry_backoff_s": 0.01,
            }
        ],
    )
    with config.build() as fabric, ThreadPoolExecutor(2) as executor:
        ctx = RunContext(
            components={"events": fabric, "executor": executor}, seed=3, trial=0, run_dir=tmp_path
        )
        scenario = EventTriggersConfig(
            events=300, poison_share=0.05, flaky_share=0.1, malformed_share=0.03
        ).build()
        scenario.run(ctx)
        m = ctx.metrics
        assert m["events_matched"] == m["events_matched_expected"] > 0
        poison = m["events_matched"] - m["events_handled"]
        assert poison > 0 and m["dead_lettered"] == poison + m["malformed_events"]
        assert m["malformed_events"] > 0
        assert m["handler_retries"] > 0  # flaky events failed once and were retried
        assert m["handler_failures"] >= 3 * poison  # a poison event fails 1 + 2 retries times
        alice = fabric.session("alice")
        dead = _drain(alice.consumer(["sensors-dlq"], group="read-dlq"), int(m["dead_lettered"]))
        assert len(dead) == m["dead_lettered"]
        reasons = {e.headers[DLQ_ERROR].split(b":")[0] for e in dead}
        assert reasons == {b"handler failed 3 times", b"value is not JSON"}


_CALLS: list[tuple[str, int, int]] = []  # (event id or "poison", attempt, calls in flight)
_IN_FLIGHT = [0]
_LOCK = threading.Lock()


def _tracking_handler(events: list[dict[str, Any]], context: dict[str, Any]) -> int:
    with _LOCK:
        _IN_FLIGHT[0] += 1
        _CALLS.append((events[0]["value"]["id"], context["attempt"], _IN_FLIGHT[0]))
    try:
        time.sleep(0.005)
        if events[0]["value"]["id"] == 0:
            raise RuntimeError("poison")
        return len(events)
    finally:
        with _LOCK:
            _IN_FLIGHT[0] -= 1


def test_a_retrying_batch_does_not_hold_up_the_others() -> None:
    _CALLS.clear()
    config = EmbeddedEventsConfig(
        principals=["alice"], consumer=FAST_GROUPS, topics=[{"name": "jobs", "partitions": 1}]
    )
    spec = _trigger(
        "slow",
        "jobs",
        handler=f"{__name__}:_tracking_handler",
        batch_size=1,
        concurrency=2,
        max_retries=2,
        retry_backoff_s=0.5,
    )
    with config.build() as fabric, ThreadPoolExecutor(4) as executor:
        alice = fabric.session("alice")
        producer = alice.producer(value_format="json")
        for i in range(40):
            producer.produce("jobs", {"id": i})
        producer.flush()
        trigger = alice.trigger(spec, executor)
        for _ in range(600):
            if trigger.stats.handled + trigger.stats.dead_lettered >= 40:
                break
            time.sleep(0.01)
        trigger.stop()
    assert trigger.stats.handled == 39 and trigger.stats.dead_lettered == 1
    assert max(in_flight for _, _, in_flight in _CALLS) == 2  # never more than concurrency
    # The poison event (id 0, first in the poll) is retried after 0.5 s and 1 s; the other
    # 39 events are all handled while it waits, not after its retries.
    order = [(i, attempt) for i, attempt, _ in _CALLS]
    assert order.index((0, 1)) > max(order.index((i, 0)) for i in range(1, 40))


def test_trigger_resumes_where_it_stopped(tmp_path: Path) -> None:
    out = tmp_path / "handled.jsonl"
    config = EmbeddedEventsConfig(
        principals=["alice"], consumer=FAST_GROUPS, topics=[{"name": "jobs", "partitions": 2}]
    )
    spec = _trigger(
        "sink",
        "jobs",
        handler="components.events.handlers:append_jsonl",
        handler_args={"path": str(out)},
        batch_size=5,
    )
    with config.build() as fabric, ThreadPoolExecutor(1) as executor:
        alice = fabric.session("alice")
        producer = alice.producer(value_format="json")

        def emit(ids: range) -> None:
            for i in ids:
                producer.produce("jobs", {"id": i})
            producer.flush()

        def handled() -> list[int]:
            lines = out.read_text().splitlines() if out.exists() else []
            return [json.loads(line)["value"]["id"] for line in lines]

        emit(range(100))
        first = alice.trigger(spec, executor)
        for _ in range(300):
            if len(handled()) >= 100:
                break
            time.sleep(0.05)
        first.stop()
        emit(range(100, 150))  # arrives while no trigger runs
        second = alice.trigger(spec, executor)
        for _ in range(300):
            if len(handled()) >= 150:
                break
            time.sleep(0.05)
        second.stop()
    ids = handled()
    assert sorted(ids) == list(range(150))  # nothing skipped, nothing handled twice


@pytest.mark.slow
def test_broker_restart_loses_nothing(
    s3_endpoint: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = EmbeddedEventsConfig(
        principals=["loom"],
        consumer=FAST_GROUPS,
        storage="s3",
        s3_endpoint=s3_endpoint,
        s3_bucket=f"tansu-{uuid.uuid4().hex[:6]}",
        topics=[{"name": "stream", "partitions": 2}],
        producers={
            "topic": "stream",
            "count": 2,
            "events": 2000,
            "rate_per_s": 2000,
            "event_size": 200,
        },
        consumers={"topic": "stream", "count": 1, "group": "r"},
    )
    restart = FaultSchedule([Fault(kind="broker_restart", at_fraction=0.5)])
    with config.build() as fabric, restart.during(0, {"events": fabric}) as faults:
        ctx = RunContext(
            components={"events": fabric, "faults": faults},
            seed=0,
            trial=0,
            run_dir=tmp_path,
            progress=faults.progress(SilentProgress()),
        )
        EventThroughputConfig().build().run(ctx)
    assert ctx.metrics["events_produced"] == 4000
    assert ctx.metrics["events_lost"] == 0
    assert faults.metrics()["faults_broker_restart"] == 1
    assert faults.metrics()["fault_recover_s_max"] > 0
    # The clients' failed connections during the restart Loom made are expected: not errors.
    loud = [
        r.getMessage()
        for r in caplog.records
        if r.name == "loom.librdkafka" and r.levelno >= logging.WARNING
    ]
    assert not loud, loud[:3]


def test_prompt_readers_wait_briefly_only_on_the_embedded_broker_in_memory(
    fabric: KafkaEventFabric,
) -> None:
    import pickle

    embedded = fabric.broker is not None  # the kafka case reaches the same broker from outside
    expected = {"fetch.wait.max.ms": 1} if embedded else {}
    session = fabric.session("alice")
    assert session.prompt_settings() == expected
    assert pickle.loads(pickle.dumps(session)).prompt_settings() == expected  # a worker's copy
    # With its log on S3 each fetch reads the store: the fabric's own wait stays.
    assert EmbeddedEventsConfig(storage="s3").build().prompt_settings() == {}
