"""GreenFaaS's planning model of an endpoint, MHRA, ClusterMHRA, and the scenario."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from components.endpoints.live import LiveEndpointsConfig
from components.endpoints.protocol import Site
from components.endpoints.simulated import SimulatedEndpoints, SimulatedEndpointsConfig
from components.task_placement._greedy import Objective, greedy, orderings
from components.task_placement._plan import PlanEndpoint
from components.task_placement.cluster_mhra import (
    ClusterMhra,
    ClusterMhraConfig,
    cluster_tasks,
    threshold_j,
)
from components.task_placement.mhra import Mhra, MhraConfig
from components.task_placement.protocol import Problem
from components.task_placement.round_robin import RoundRobinTasks

COLD = Site("cold", slots=2, min_blocks=0, static_w=10.0, shutdown_s=5.0, cold_start_s=3.0)
WARM = Site("warm", slots=2, min_blocks=1, static_w=10.0, shutdown_s=5.0)


def test_a_cold_endpoint_costs_nothing_until_a_task_comes_then_its_block_and_tail() -> None:
    plan = PlanEndpoint(COLD)
    assert (plan.runtime(), plan.energy()) == (0.0, 0.0)
    plan.schedule(4.0, 1.0)
    # One block for 4 s at 10 W, plus its 5 s idle tail; the cold start adds time, no energy.
    assert plan.blocks == 1
    assert plan.runtime() == 4.0 + 3.0
    assert plan.energy() == pytest.approx(1.0 + 4 * 10 + 5 * 10)


def test_predicting_leaves_the_state_alone_and_the_faithful_quirk_drops_the_cold_start() -> None:
    warm = PlanEndpoint(WARM)
    assert warm.predict(4.0, 1.0) == (4.0, pytest.approx(1.0 + 40))  # no tail: it stays up
    assert (warm.runtime(), warm.energy(), warm.tasks) == (0.0, 0.0, 0)
    assert PlanEndpoint(COLD).predict(4.0, 1.0)[0] == 7.0
    assert PlanEndpoint(COLD, faithful=True).predict(4.0, 1.0)[0] == 4.0


def test_a_block_is_added_when_slots_per_task_fall_below_parallelism() -> None:
    site = Site(
        "grow", slots=1, min_blocks=0, max_blocks=2, parallelism=0.5, static_w=1.0, shutdown_s=2.0
    )
    plan = PlanEndpoint(site)
    plan.schedule(4.0, 0.0)
    plan.schedule(2.0, 0.0)  # 1 slot / 2 tasks = 0.5: not below
    assert (plan.blocks, plan.makespan) == (1, 6.0)
    plan.schedule(3.0, 0.0)  # 1 / 3 < 0.5: a second block; 4 and 2 replayed over 2 slots
    assert (plan.blocks, plan.makespan) == (2, 5.0)
    assert plan.energy() == pytest.approx(5.0 * 2 * 1.0 + 2 * 2.0 * 1.0)  # two tails


def test_mhra_keeps_the_ordering_whose_placement_costs_least() -> None:
    # One endpoint, two slots: in submission order (1, 1, 2) the makespan is 3; longest first, 2.
    problem = Problem((Site("one", 2, 1),), np.array([[1.0], [1.0], [2.0]]), np.ones((3, 1)))
    placement = Mhra(alpha=0.0).place(problem)
    assert placement.ordering == "longest_processing_time"
    assert placement.order.tolist() == [2, 0, 1]


def test_alpha_trades_time_for_energy() -> None:
    # A fast power-hungry endpoint and a slow frugal one, both always on.
    sites = (Site("fast", 4, 1, static_w=0.0), Site("frugal", 4, 1, static_w=0.0))
    runtime = np.tile([1.0, 3.0], (8, 1))
    energy = np.tile([5.0, 1.0], (8, 1))
    problem = Problem(sites, runtime, energy)
    assert set(Mhra(alpha=1.0).place(problem).endpoint.tolist()) == {1}
    time_only = Mhra(alpha=0.0).place(problem).endpoint
    assert (time_only == 0).sum() > (time_only == 1).sum()


def _greenfaas(**changes: Any) -> tuple[SimulatedEndpoints, Problem]:
    endpoints = SimulatedEndpoints(SimulatedEndpointsConfig(**changes))
    workload = endpoints.workload(32, "function_major", 0)
    runtime, energy = endpoints.predictor(0, None).predict(workload.functions, workload.features)
    return endpoints, Problem(endpoints.plan_sites, runtime, energy, seed=0)


def test_cluster_mhra_merges_only_clusters_below_the_threshold() -> None:
    _, problem = _greenfaas()
    threshold = threshold_j(problem)
    assert threshold == pytest.approx(0.25 * 266.2 * 10)
    groups = cluster_tasks(problem, threshold)
    members = np.concatenate(groups)
    assert sorted(members.tolist()) == list(range(problem.tasks))  # a partition
    assert len(groups) < problem.tasks / 4  # cheap tasks merged
    for group in groups:
        if len(group) > 1:  # two parts each below the threshold
            assert problem.energy_j[group, 0].sum() < 2 * threshold
    heavy = [g for g in groups if problem.energy_j[g, 0].sum() >= threshold]
    assert heavy, "the dna tasks (68.8 J each on midway) reach the threshold"
    assert len(cluster_tasks(problem, 0.0)) == problem.tasks  # nothing merges below zero


def _commits(faithful: bool) -> list[tuple[int, int]]:
    """(chosen endpoint, endpoint whose predictions were committed) of each cluster."""
    _, problem = _greenfaas()
    groups = cluster_tasks(problem, threshold_j(problem))
    rt = [problem.runtime_s[g].T.tolist() for g in groups]
    en = [problem.energy_j[g].T.tolist() for g in groups]
    names = [s.name for s in problem.sites]
    seen: list[tuple[int, int]] = []

    def commit(plan: PlanEndpoint, c: int, e: int) -> None:
        seen.append((names.index(plan.site.name), e))
        plan.schedule_many(rt[c][e], en[c][e])

    order = orderings(np.array([[sum(r[0])] for r in rt]), np.array([[sum(x[0])] for x in en]))
    greedy(
        problem,
        Objective(problem, 0.2, faithful),
        order["identity"],
        faithful=faithful,
        predict=lambda e, plan, c: plan.predict_many(rt[c][e], en[c][e]),
        commit=commit,
        commit_last_evaluated=faithful,
    )
    return seen


def test_the_faithful_flag_commits_the_last_evaluated_endpoints_predictions() -> None:
    last = 3  # theta, the last endpoint evaluated
    buggy = _commits(faithful=True)
    assert all(source == last for _, source in buggy)
    assert any(chosen != last for chosen, _ in buggy), "the bug shows only off the last endpoint"
    assert all(chosen == source for chosen, source in _commits(faithful=False))


def test_the_bug_changes_the_placement_on_the_published_workload() -> None:
    _, problem = _greenfaas()
    fixed = ClusterMhra(alpha=0.2).place(problem).endpoint
    buggy = ClusterMhra(alpha=0.2, faithful=True).place(problem).endpoint
    assert not np.array_equal(fixed, buggy)


def test_energy_only_puts_everything_on_the_desktop_as_the_authors_table_does() -> None:
    endpoints, problem = _greenfaas()
    placement = ClusterMhra(alpha=1.0).place(problem)
    assert set(placement.endpoint.tolist()) == {[s.name for s in endpoints.sites].index("desktop")}


def test_round_robin_deals_in_the_endpoints_order() -> None:
    _, problem = _greenfaas()
    counts = np.bincount(RoundRobinTasks().place(problem).endpoint, minlength=4)
    assert counts.tolist() == [problem.tasks // 4] * 4


def test_bad_placement_settings_are_refused() -> None:
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        MhraConfig(alpha=1.5)
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        ClusterMhraConfig(alpha=-0.1)
    with pytest.raises(ValidationError, match="slots"):
        SimulatedEndpointsConfig(sites={"a": {"slots": 0}})
    with pytest.raises(ValidationError, match="functions: unknown function 'foo'"):
        SimulatedEndpointsConfig(functions=["foo"])
    cell = {"runtime_s": 1, "energy_j": 1}
    with pytest.raises(ValidationError, match=r"profiles\.f: no profile on b"):
        SimulatedEndpointsConfig(
            sites={"a": {"slots": 1}, "b": {"slots": 1}}, profiles={"f": {"a": cell}}
        )
    with pytest.raises(ValidationError, match="profiles: unknown function 'foo'"):
        LiveEndpointsConfig(
            sites={"a": {"executor": {"kind": "thread", "max_workers": 1}}},
            functions=["bfs"],
            profiles={"bfs": {"a": cell}, "foo": {"a": cell}},
        )
    with pytest.raises(ValidationError, match="min_blocks=2 is above max_blocks=1"):
        SimulatedEndpointsConfig(sites={"a": {"slots": 1, "min_blocks": 2}})


@pytest.mark.usefixtures("prefect_harness")
def test_bad_input_on_the_command_line_writes_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from framework.cli import main

    for override, message in [
        ("task_placement.alpha=1.5", "task_placement.alpha=1.5"),
        ("endpoints.sites.midway.slots=0", "endpoints.sites.midway.slots=0"),
        ("endpoints.functions=[foo]", "unknown function 'foo'"),
        (
            "task_placement=single",
            "task_placement.endpoint='faster' is not an endpoint; choose "
            "one of: desktop, cluster, efficient",
        ),
    ]:
        recipe = "live" if override == "task_placement=single" else "energy_aware_placement"
        assert main(["run", f"recipe=greenfaas/{recipe}", override]) == 2
        assert message in capsys.readouterr().err
    assert not (workdir / "results").exists()


@pytest.mark.usefixtures("prefect_harness")
def test_simulated_placement_through_the_engine(workdir: Path) -> None:
    import mlflow

    from framework.cli import main

    assert (
        main(["run", "recipe=greenfaas/energy_aware_placement", "scenario.tasks_per_function=16"])
        == 0
    )
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'results' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["greenfaas/energy_aware_placement"])
    job = runs[runs["tags.loom.run_type"] == "job"].iloc[0]
    assert job["metrics.tasks"] == 7 * 16
    assert (
        sum(job[f"metrics.tasks_on.{e}"] for e in ("midway", "desktop", "faster", "theta")) == 112
    )
    assert job["metrics.edp_ratio_vs_best_alternative"] > 0
    assert job["metrics.prediction_error_runtime"] == 0.0  # no variation: the table is the truth
    trial = Path(job["tags.loom.run_dir"]) / "trial-000"
    rows = [json.loads(line) for line in (trial / "strategies.jsonl").read_text().splitlines()]
    assert [r["strategy"] for r in rows][:2] == ["cluster_mhra", "single:midway"]
    assert rows[0]["authors_makespan_s"] == 175.45
    assert (trial / "placement-trial-000.png").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_live_placement_through_the_engine(workdir: Path) -> None:
    import mlflow

    from framework.cli import main

    assert (
        main(
            [
                "run",
                "recipe=greenfaas/live",
                "scenario.tasks_per_function=2",
                "endpoints.profile_tasks=2",
                "endpoints.scale=0.2",
                "endpoints.cold_start_s=0.2",
                "scenario.baselines=[round_robin]",
            ]
        )
        == 0
    )
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'results' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["greenfaas/live"])
    job = runs[runs["tags.loom.run_type"] == "job"].iloc[0]
    assert job["metrics.tasks"] == 12
    assert sum(job[f"metrics.tasks_on.{e}"] for e in ("desktop", "cluster", "efficient")) == 12
    assert 0 <= job["metrics.prediction_error_runtime"] < 1
    trial = Path(job["tags.loom.run_dir"]) / "trial-000"
    tasks = [json.loads(line) for line in (trial / "tasks.jsonl").read_text().splitlines()]
    assert len(tasks) == 12 and all(t["observed_runtime_s"] > 0 for t in tasks)
    assert all(t["observed_energy_j"] > 0 and t["predicted_energy_j"] >= 0 for t in tasks)
    rows = [json.loads(line) for line in (trial / "strategies.jsonl").read_text().splitlines()]
    assert [r["strategy"] for r in rows] == ["cluster_mhra", "round_robin"]
    assert "runtime_s" in rows[0]["measured"] and "authors_makespan_s" not in rows[0]
    assert "power_scale" in rows[0]["emulated"]
