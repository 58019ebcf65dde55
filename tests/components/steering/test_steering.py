"""Colmena steering on Loom's executors: policies, the task server, queues, metrics."""

from __future__ import annotations

import copy
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from components.executor.process import ProcessExecutor
from components.executor.thread import ThreadExecutor
from components.scenarios.steered_campaign import SteeredCampaignConfig, _record
from components.steering.ackley import ackley, evaluate, runtimes
from components.steering.batch import BatchSteeringConfig
from components.steering.metrics import campaign_metrics, utilisation_series
from components.steering.protocol import CampaignSettings
from components.steering.queues import LockedPipeQueues
from components.steering.random import RandomSteeringConfig
from components.steering.reallocation import ReallocationSteeringConfig
from components.steering.server import ExecutorTaskServer
from components.steering.surrogate import rank
from framework import registry

# Every steering option's Thinker, from the registry (as a run builds it).
POLICIES = {
    kind: registry.config_model("steering", kind)().build().thinker
    for kind in registry.options("steering")
}

RUNTIME = 0.005


def _campaign(
    policy: str,
    executor: Any,
    evaluations: int = 24,
    slots: int = 2,
    seed: int = 0,
    **settings: Any,
) -> Any:
    queues = LockedPipeQueues(topics=["ml"], **settings.pop("queue_options", {}))
    server = ExecutorTaskServer(queues, [evaluate, rank], executor)
    server.serve()
    options = settings.pop("options", {"min_training": 4, "retrain_after": 3})
    thinker = POLICIES[policy](
        queues,
        CampaignSettings(
            evaluations,
            slots,
            4,
            runtimes(evaluations, RUNTIME, 0.3, seed),
            seed,
            options=options,
            **settings,
        ),
    )
    thinker.start()
    thinker.join(120)
    assert not thinker.is_alive(), "the campaign did not finish"
    queues.send_kill_signal()
    server.wait(10)
    return thinker


def test_ackley_is_zero_at_the_origin_and_about_twenty_far_away() -> None:
    assert ackley([0.0] * 4) == pytest.approx(0.0, abs=1e-12)
    assert 19 < ackley([30.0, -30.0, 30.0, -30.0]) < 23


def test_metrics_from_known_timestamps() -> None:
    def task(
        created: float, start: float, end: float, received: float, value: float | None
    ) -> dict[str, Any]:
        return {
            "created": created,
            "compute_started": start,
            "compute_ended": end,
            "result_received": received,
            "value": value,
            "success": value is not None,
        }

    tasks = [
        task(0.0, 0.1, 1.1, 1.2, 9.0),
        task(0.0, 0.2, 2.2, 2.25, None),
        task(1.2, 1.3, 4.0, 4.5, 3.0),
    ]
    m = campaign_metrics(tasks, slots=2, decisions_s=[0.001, 0.003], epsilon=5.0)
    # Busy slot-time 1.0 + 2.0 + 2.7 over 2 slots x (0 -> 4.0).
    assert m["utilisation"] == pytest.approx(5.7 / 8)
    assert m["makespan_s"] == 4.0 and m["failed"] == 1 and m["best_value"] == 3.0
    assert m["evaluations_to_epsilon"] == 3 and m["time_to_epsilon_s"] == 4.5
    assert m["reaction_p50_ms"] == pytest.approx(100.0)
    assert m["dispatch_p50_ms"] == pytest.approx(100.0)
    assert m["decision_p50_ms"] == pytest.approx(2.0)
    times, busy = utilisation_series(tasks, 2, points=9)
    assert times[0] == 0 and times[-1] == 4.0
    assert busy[1] == 1.0 and busy[-1] == 0.0  # at 0.5 s both compute; at the end none


def test_locked_pipe_queues_keep_large_messages_from_several_threads_whole() -> None:
    queues = LockedPipeQueues()
    queues.set_role("any")
    big = "x" * 100_000  # above the 16 KiB at which one send becomes two writes
    threads = [
        threading.Thread(target=lambda: [queues._send_request(big, "default") for _ in range(20)])
        for _ in range(4)
    ]
    received: list[Any] = []
    reader = threading.Thread(
        target=lambda: received.extend(queues._get_request(5) for _ in range(80))
    )
    reader.start()
    for thread in threads:
        thread.start()
    for thread in [*threads, reader]:
        thread.join(30)
    assert len(received) == 80 and all(message == ("default", big) for message in received)


class _AnsweredAtOnce(LockedPipeQueues):
    """Queues whose request is answered, and the answer read, before ``send_inputs`` returns."""

    def _send_request(self, message: str, topic: str) -> None:
        super()._send_request(message, topic)
        server = copy.copy(self)
        server.set_role("server")
        _, task = server.get_task(timeout=5)
        task.set_result(0.0)
        server.send_result(task)
        self.reader = threading.Thread(target=lambda: self.get_result(timeout=5))
        self.reader.start()
        self.reader.join(0.5)  # Colmena's reader counts the result here, before the task


def test_a_result_that_comes_back_before_send_inputs_returns_still_completes_the_task() -> None:
    queues = _AnsweredAtOnce()
    queues.send_inputs(1.0, method="evaluate")
    queues.reader.join(5)
    assert queues.active_count == 0  # Colmena's PipeQueues: 1 for ever, and the Thinker hangs
    assert queues.wait_until_done(timeout=1)


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_the_task_server_runs_a_campaign_on_a_loom_executor(kind: str) -> None:
    executor = ThreadExecutor(2) if kind == "thread" else ProcessExecutor(2, "forkserver")
    with executor:
        thinker = _campaign("random", executor, evaluations=10)
    records = [_record(r) for r in thinker.results]
    assert len(records) == 10 and all(r["success"] for r in records)
    for r in records:
        assert r["created"] <= r["compute_started"] <= r["compute_ended"] <= r["result_received"]
        assert r["value"] == pytest.approx(ackley(r["x"]))
    assert sorted(r["index"] for r in records) == list(range(10))


@pytest.mark.slow
@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_each_policy_improves_on_its_first_points_within_its_slots(policy: str) -> None:
    slots = 2
    with ThreadExecutor(slots) as executor:
        thinker = _campaign(policy, executor, evaluations=24, slots=slots)
    records = [_record(r) for r in thinker.results]
    values = [r["value"] for r in records]
    assert len(values) == 24 and None not in values
    assert min(values) < min(values[:slots])  # the search moved past its first points
    # Resource accounting: never more tasks computing than slots, every slot back at the end.
    _, busy = utilisation_series(records, slots, points=2000)
    assert busy.max() <= 1.0
    counter = thinker.counter
    pool = "sim" if policy == "reallocation" else None
    assert counter.available_slots(pool) == slots
    if policy in ("interleaved", "reallocation"):
        assert thinker.retrains >= 1
    if policy == "reallocation":
        assert counter.allocated_slots("ml") == 0  # the borrowed slot went back


@pytest.mark.parametrize("policy", ["interleaved", "reallocation"])
def test_a_pool_smaller_than_the_budget_ends_the_campaign_when_spent(policy: str) -> None:
    options = {"min_training": 3, "retrain_after": 2, "pool": 7}
    with ThreadExecutor(2) as executor:
        thinker = _campaign(policy, executor, evaluations=12, options=options)
    assert sorted(r.task_info["index"] for r in thinker.results) == list(range(7))


def test_a_crashing_task_is_reported_with_its_error_or_retried() -> None:
    with ThreadExecutor(2) as executor:
        failing = _campaign("random", executor, evaluations=9, crash_every=3)
        retried = _campaign("random", executor, evaluations=9, crash_every=3, max_retries=1)
    failed = [_record(r) for r in failing.results if not r.success]
    assert len(failed) == 3
    assert all("injected crash of attempt 1" in r["error"]["message"] for r in failed)
    assert all(r["error"]["type"] == "RuntimeError" and r["error"]["traceback"] for r in failed)
    records = [_record(r) for r in retried.results]
    assert all(r["success"] for r in records)
    assert sorted(r["index"] for r in records if r["retries"] == 1) == [2, 5, 8]


def test_a_retried_task_finds_its_proxied_inputs(tmp_path: Path) -> None:
    # Colmena proxies inputs with evict=True: the first attempt's read deleted them, and every
    # retry failed to resolve its proxy. A task that may be retried keeps them to its last try.
    from proxystore.connectors.file import FileConnector
    from proxystore.store import Store, unregister_store

    store = Store("steer-retries", FileConnector(str(tmp_path / "store")), register=True)
    try:
        with ThreadExecutor(2) as executor:
            retried = _campaign(
                "random",
                executor,
                evaluations=9,
                crash_every=3,
                max_retries=1,
                queue_options={"proxystore_name": store.name, "proxystore_threshold": 50},
            )
        left = list((tmp_path / "store").iterdir())
    finally:
        unregister_store(store)
        store.close()
    records = [_record(r) for r in retried.results]
    assert all(r["success"] for r in records), [r["error"] for r in records if not r["success"]]
    assert sorted(r["index"] for r in records if r["retries"] == 1) == [2, 5, 8]
    assert not left  # kept inputs are gone after the last try


def test_bad_steering_settings_are_refused() -> None:
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        RandomSteeringConfig(slots=0)
    with pytest.raises(ValidationError, match="greater than 0"):
        SteeredCampaignConfig(epsilon=0)
    with pytest.raises(ValidationError, match="greater than 0"):
        SteeredCampaignConfig(epsilon=-1.0)
    assert BatchSteeringConfig().build().options == {"surrogate_noise": True}
    assert ReallocationSteeringConfig(retrain_wait_s=2).build().options["retrain_wait_s"] == 2


@pytest.mark.usefixtures("prefect_harness")
def test_bad_steering_input_on_the_command_line(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from framework.cli import main

    for override, message in [
        ("steering=nope", "steering=nope: no such option"),
        ("steering.slots=0", "steering.slots=0"),
        ("scenario.epsilon=0", "scenario.epsilon=0"),
    ]:
        assert main(["run", "scenario=steered_campaign", override]) == 2
        assert message in capsys.readouterr().err
    assert not (workdir / "results").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_a_steered_campaign_through_the_engine(workdir: Path) -> None:
    import mlflow

    from framework.cli import main

    assert (
        main(
            [
                "run",
                "scenario=steered_campaign",
                "steering=streaming",
                "steering.min_training=4",
                "scenario.evaluations=16",
                "scenario.runtime_median_s=0.01",
                "scenario.crash_every=5",
                "executor.max_workers=4",
            ]
        )
        == 0
    )
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'results' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["no-recipe/steered_campaign"])
    job = runs[runs["tags.loom.run_type"] == "job"].iloc[0]
    assert job["metrics.evaluations"] == 16 and job["metrics.failed"] == 3
    assert 0 < job["metrics.utilisation"] <= 1 and job["metrics.reaction_p99_ms"] >= 0
    trial = Path(job["tags.loom.run_dir"]) / "trial-000"
    tasks = [json.loads(line) for line in (trial / "tasks.jsonl").read_text().splitlines()]
    assert len(tasks) == 16 and np.isfinite([t["result_received"] for t in tasks]).all()
    assert (trial / "steering-trial-000.png").exists()


class _SetOnSecondLook(threading.Event):
    """A cancel event that turns set between the slot being taken and the check after it."""

    def __init__(self) -> None:
        super().__init__()
        self.looks = 0

    def is_set(self) -> bool:
        self.looks += 1
        return self.looks >= 2


def test_a_cancel_racing_a_granted_slot_loses_no_slot() -> None:
    from colmena.thinker.resources import ResourceCounter

    from components.steering._counter import SafeResourceCounter

    colmena = ResourceCounter(2)
    assert colmena.acquire(None, 2, cancel_if=_SetOnSecondLook()) is False
    assert colmena.available_slots(None) == 1  # Colmena 0.7.2 leaks the slot it took
    ours = SafeResourceCounter(2)
    assert ours.acquire(None, 2, cancel_if=_SetOnSecondLook()) is True  # both slots came
    ours.release(None, 2)
    held = SafeResourceCounter(2)
    assert held.acquire(None, 1)
    cancel = threading.Event()
    cancel.set()
    assert held.acquire(None, 2, cancel_if=cancel) is False  # one free, two wanted: cancelled
    assert held.available_slots(None) == 1  # the free one given back
