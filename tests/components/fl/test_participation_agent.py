"""The participation agent: a Colmena Thinker that plans rounds from events on the fabric."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from components.events.embedded import EmbeddedEventsConfig
from components.events.fabric import KafkaEventFabric
from components.fl.agent import steering_over
from components.fl.participation import SiteLoad, plan_rounds, schedule

pytestmark = [pytest.mark.service]

DEVICES = {"a": 4, "b": 4, "c": 2}


@pytest.fixture(scope="module")
def fabric() -> Iterator[KafkaEventFabric]:
    groups = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 100}
    with EmbeddedEventsConfig(principals=["loom"], consumer=groups).build() as opened:
        yield opened


def _sites(dirtiest: str) -> dict[str, SiteLoad]:
    """One site ten times dirtier than the others, every hour."""

    def grid(site: str) -> Callable[[float], float]:
        return lambda hour: (500.0 if site == dirtiest else 50.0) + hour % 3

    return {s: SiteLoad(n, 0.001, grid(s)) for s, n in DEVICES.items()}


def _steer(fabric: KafkaEventFabric, dirtiest: str, rounds: int) -> list[Any]:
    chosen = schedule("carbon_aware", _sites(dirtiest))
    with steering_over(fabric.session("loom"), chosen, 30.0) as (agent, channel):
        plans = []
        hour = 24.0
        channel.report({"round": -1, "next_hour": hour})
        for index in range(rounds):
            plan = channel.plan(index)
            plans.append(plan)
            hour = plan.hour + 1
            report = {
                "round": index,
                "next_hour": hour,
                "kwh": {s: 0.001 * n for s, n in plan.devices.items()},
                "devices": dict(plan.devices),
                "end": index + 1 == rounds,
            }
            channel.report(report)
        agent.join(10)
        assert not agent.is_alive(), "the end report did not stop the agent"
    assert agent.error is None
    assert channel.reports_sent == agent.reports_taken == rounds + 1  # nothing lost
    assert len(channel.received) == len(agent.decisions_s) == rounds
    return plans


def test_the_agent_plans_every_round_as_the_schedule_would(fabric: KafkaEventFabric) -> None:
    plans = _steer(fabric, "a", 6)
    alone = plan_rounds(schedule("carbon_aware", _sites("a")), 6, 24.0)
    assert [(p.hour, dict(p.devices)) for p in plans] == [(p.hour, dict(p.devices)) for p in alone]
    assert not [t for t in fabric.topic_names() if t.startswith("loom.fl-")]  # deleted at exit


def test_the_agents_decisions_follow_the_carbon_series(fabric: KafkaEventFabric) -> None:
    dirty_a = _steer(fabric, "a", 6)
    dirty_c = _steer(fabric, "c", 6)
    assert sum("a" in p.devices for p in dirty_a) < sum("a" in p.devices for p in dirty_c)
    assert sum("c" in p.devices for p in dirty_c) < sum("c" in p.devices for p in dirty_a)


def test_a_round_reported_twice_is_planned_once(fabric: KafkaEventFabric) -> None:
    chosen = schedule("carbon_aware", _sites("a"))
    with steering_over(fabric.session("loom"), chosen, 30.0) as (agent, channel):
        channel.report({"round": -1, "next_hour": 24.0})
        first = channel.plan(0)
        report = {"round": 0, "next_hour": first.hour + 1, "kwh": {}, "devices": {}}
        channel.report(report)
        channel.report(report)  # a producer's retry across a broker restart
        second = channel.plan(1)
        channel.report({**report, "round": 1, "end": True})
        agent.join(10)
    assert agent.duplicates == 1 and len(agent.planned) == 2
    assert channel.plan(1) == second  # the first plan of a round is kept


def test_a_failed_agent_is_named_by_the_round_waiting_for_it(fabric: KafkaEventFabric) -> None:
    chosen = schedule("carbon_aware", _sites("a"))
    with steering_over(fabric.session("loom"), chosen, 2.0) as (agent, channel):
        channel.report({"round": 3})  # no next_hour: the agent cannot plan
        with pytest.raises(
            TimeoutError, match=r"round 4 .* within 2 s: the agent failed \(KeyError"
        ):
            channel.plan(4, lambda: agent.error)
