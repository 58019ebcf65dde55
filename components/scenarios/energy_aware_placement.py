"""``scenario=energy_aware_placement``: GreenFaaS's experiment, simulated or live.

One trial places a batch (``tasks_per_function`` tasks of each function, submitted at t = 0)
with the ``task_placement`` strategy and with each baseline, runs or scores every placement on
the same endpoints and the same tasks, and logs makespan, energy (dynamic + static + idle
tail), EDP and the headline ``edp_ratio_vs_best_alternative`` = EDP(best baseline) / EDP(this
strategy). Task records carry the endpoint, predicted and observed runtime and energy.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from components.base import ComponentConfig, FinishedJob, RunContext, Scenario, ScenarioConfig
from components.endpoints import relative_error
from components.endpoints.protocol import Endpoints, Executed, TaskPlacement, Workload
from components.task_placement.protocol import Problem, TaskPlacer

BASELINES = ("single", "round_robin", "fastest", "least_energy", "mhra", "cluster_mhra")


class EnergyAwarePlacementConfig(ScenarioConfig):
    """A batch placed by the strategy and by each baseline; EDP compared on the same tasks."""

    kind: Literal["energy_aware_placement"] = "energy_aware_placement"
    requires: ClassVar[tuple[str, ...]] = ("endpoints", "task_placement")
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "edp_ratio_vs_best_alternative",
        "edp_kj_s",
        "makespan_s",
        "endpoints_energy_kj",
        "scheduling_overhead_s",
    )
    tasks_per_function: int = Field(256, ge=1, le=100_000, description="tasks of each function")
    order: Literal["function_major", "interleaved", "shuffled"] = Field(
        "function_major", description="submission order (the authors': function-major)"
    )
    baselines: list[str] = Field(
        default_factory=lambda: ["single", "round_robin", "mhra"],
        description="alternatives placed beside: single (each endpoint alone), round_robin, "
        "fastest, least_energy, mhra, cluster_mhra (alpha 0.5)",
    )

    @field_validator("baselines")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        bad = [b for b in value if b not in BASELINES]
        if bad or not value:
            raise ValueError(f"{bad or value}: each baseline must be one of {', '.join(BASELINES)}")
        return value

    def build(self) -> Scenario:
        """Create the scenario."""
        return EnergyAwarePlacement(self)

    def check_components(self, groups: Mapping[str, ComponentConfig]) -> list[str]:
        """A single-endpoint strategy names one of the endpoints."""
        endpoint = getattr(groups["task_placement"], "endpoint", None)
        sites = list(getattr(groups["endpoints"], "sites", {}))
        if endpoint is not None and endpoint not in sites:
            return [
                f"task_placement.endpoint={endpoint!r} is not an endpoint; "
                f"choose one of: {', '.join(sites)}"
            ]
        return []

    @classmethod
    def comparison(cls, runs: list[FinishedJob]) -> tuple[str, list[dict[str, Any]]] | None:
        """Each job's strategy beside the authors' row (α sweep: their sensitivity table)."""
        from components.scenarios.greenfaas_report import comparison

        return comparison(runs)


def baseline_placers(names: list[str], endpoints: Endpoints) -> list[TaskPlacer]:
    """The baselines' placers (``single`` is one per endpoint)."""
    from components.task_placement.cluster_mhra import ClusterMhra
    from components.task_placement.fastest import Fastest
    from components.task_placement.least_energy import LeastEnergy
    from components.task_placement.mhra import Mhra
    from components.task_placement.round_robin import RoundRobinTasks
    from components.task_placement.single import SingleEndpoint

    placers: list[TaskPlacer] = []
    for name in names:
        if name == "single":
            placers += [SingleEndpoint(site.name) for site in endpoints.sites]
        else:
            make = {
                "round_robin": RoundRobinTasks,
                "fastest": Fastest,
                "least_energy": LeastEnergy,
                "mhra": Mhra,
                "cluster_mhra": ClusterMhra,
            }[name]
            placers.append(make())
    return placers


def label(placer: TaskPlacer) -> str:
    """A placer's name as results show it (``single:faster``, ``cluster_mhra``)."""
    endpoint = getattr(placer, "endpoint", None)
    return f"{placer.name}:{endpoint}" if endpoint else placer.name


def _used(placer: TaskPlacer, endpoints: Endpoints) -> tuple[int, ...]:
    index = getattr(placer, "index", None)
    if index is not None:
        return (int(index(Problem(endpoints.sites, np.zeros((0, 1)), np.zeros((0, 1))))),)
    return tuple(range(len(endpoints.sites)))


class EnergyAwarePlacement:
    """One trial: place, run or score, compare."""

    def __init__(self, config: EnergyAwarePlacementConfig) -> None:
        self.config = config

    def run(self, ctx: RunContext) -> None:
        """Place the batch with the strategy and every baseline; log and record."""
        cfg = self.config
        endpoints = ctx.component("endpoints", Endpoints)  # type: ignore[type-abstract]
        placer = ctx.component("task_placement", TaskPlacer)  # type: ignore[type-abstract]
        workload = endpoints.workload(cfg.tasks_per_function, cfg.order, ctx.seed)
        with ctx.progress.bar("profiling functions on endpoints", None):
            predictor = endpoints.predictor(ctx.seed, ctx.watts_per_thread)
        own = label(placer)
        alternatives = [p for p in baseline_placers(cfg.baselines, endpoints) if label(p) != own]
        results: dict[str, tuple[TaskPlacement, Executed, float]] = {}
        predicted: tuple[np.ndarray, np.ndarray] | None = None
        with ctx.progress.bar("placing and running strategies", 1 + len(alternatives)) as bar:
            for done, current in enumerate([placer, *alternatives]):
                started = time.perf_counter()
                runtime, energy = predictor.predict(workload.functions, workload.features)
                placement = current.place(Problem(endpoints.plan_sites, runtime, energy, ctx.seed))
                overhead = time.perf_counter() - started
                if current is placer:
                    predicted = (runtime, energy)
                used = _used(current, endpoints)
                executed = endpoints.run(placement, workload, used, ctx.watts_per_thread)
                results[label(current)] = (placement, executed, overhead)
                bar.update(done + 1)
        assert predicted is not None
        self._log(ctx, endpoints, workload, own, results, predicted)

    def _log(
        self,
        ctx: RunContext,
        endpoints: Endpoints,
        workload: Workload,
        own: str,
        results: dict[str, tuple[TaskPlacement, Executed, float]],
        predicted: tuple[np.ndarray, np.ndarray],
    ) -> None:
        from components.scenarios.greenfaas_report import plot, strategy_rows

        placement, executed, overhead = results[own]
        rows = np.arange(workload.tasks)
        pred_rt = predicted[0][rows, placement.endpoint]
        pred_en = predicted[1][rows, placement.endpoint]
        ctx.log_metrics(
            {
                "makespan_s": executed.makespan_s,
                "endpoints_energy_kj": executed.energy_total_j / 1000,
                "dynamic_kj": executed.dynamic_j / 1000,
                "static_kj": executed.static_j / 1000,
                "edp_kj_s": executed.edp_kj_s,
                "scheduling_overhead_s": overhead,
                "clusters": placement.clusters,
                "tasks": workload.tasks,
                "prediction_error_runtime": relative_error(pred_rt, executed.runtime_s),
                "prediction_error_energy": relative_error(pred_en, executed.energy_j),
                **{f"tasks_on.{name}": count for name, count in executed.tasks.items()},
            }
        )
        others = {name: r[1].edp_kj_s for name, r in results.items() if name != own}
        if others and executed.edp_kj_s > 0:
            ctx.log_metric(
                "edp_ratio_vs_best_alternative", min(others.values()) / executed.edp_kj_s
            )
            singles = {n: results[n][1] for n in others if n.startswith("single:")}
            if singles:
                fastest = min(singles.values(), key=lambda e: e.makespan_s)
                ctx.log_metric("edp_ratio_vs_fastest_single", fastest.edp_kj_s / executed.edp_kj_s)
            for name, edp in others.items():
                ctx.log_metric(f"edp_ratio_vs.{name.replace(':', '_')}", edp / executed.edp_kj_s)
        names = [endpoints.functions[f] for f in workload.functions.tolist()]
        ctx.write_records(
            "tasks",
            (
                {
                    "task_id": i,
                    "function": names[i],
                    "endpoint": endpoints.sites[e].name,
                    "predicted_runtime_s": float(pred_rt[i]),
                    "observed_runtime_s": float(executed.runtime_s[i]),
                    "predicted_energy_j": float(pred_en[i]),
                    "observed_energy_j": float(executed.energy_j[i]),
                    "start_s": float(executed.start_s[i]),
                }
                for i, e in enumerate(placement.endpoint.tolist())
            ),
        )
        table = strategy_rows(results, own, endpoints)
        ctx.write_records("strategies", table)
        plot(table, ctx.run_dir / f"placement-trial-{ctx.trial:03d}.png", endpoints.live)
