"""``scenario=placement_simulation``: replay a workload onto a node set with a placer."""

from __future__ import annotations

import csv
import gzip
import random
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import Field, field_validator, model_validator

from components.base import FinishedJob, LoomModel, RunContext, Scenario, ScenarioConfig
from components.placement.cluster import Cluster, NodeSetError, NodeSpec, read_nodes
from components.placement.costs import DATA_DIR, CodingTimes, NearestSize, data_path
from components.placement.csv_rows import read_rows
from components.placement.protocol import Placer
from components.placement.reliability import TargetRng, daily_failure_rate
from components.placement.scheduling import PlacerScheduler, Scheduler, SchedulingContext
from components.scenarios.placement_comparison import relative_to_best_baseline
from components.scenarios.placement_records import write_reference_records
from components.scenarios.placement_simulator import FailurePlan, SimulationResult, Simulator
from components.scenarios.placement_workload import WorkloadError, read_workload


class NoFailures(LoomModel):
    """Nodes never fail."""

    kind: Literal["none"] = "none"


class NodeAtItem(LoomModel):
    """One node fails just before item ``item`` (the reference's mode 1)."""

    kind: Literal["node_at_item"] = "node_at_item"
    item: int = Field(10_000, ge=0, description="index of the item before which it fails")
    node: int | None = Field(None, ge=0, description="node id (default: a seeded random one)")


class DailyFailures(LoomModel):
    """Each day of submit time, each node fails with its daily rate (the reference's mode 2)."""

    kind: Literal["daily"] = "daily"


class TraceFailures(LoomModel):
    """Nodes fail at the times of a CSV ``id,failed_time(s)`` (the reference's mode 3)."""

    kind: Literal["trace"] = "trace"
    path: str = Field(description="CSV of node id and failure time in seconds")


Failures = Annotated[
    NoFailures | NodeAtItem | DailyFailures | TraceFailures, Field(discriminator="kind")
]


class _OneNode(FailurePlan):
    def __init__(self, item: int, node: int | None, seed: int) -> None:
        self.item, self.node, self.seed = item, node, seed

    def due(self, item: int, submit_s: int, cluster: Cluster) -> list[int]:
        if item != self.item:
            return []
        if self.node is None:
            return [
                random.Random(self.seed).choice([i for i in range(cluster.size) if cluster.up[i]])
            ]
        return [int(i) for i in (cluster.ids == self.node).nonzero()[0]]


class _Daily(FailurePlan):
    def __init__(self, afr_pct: list[float], seed: int) -> None:
        self.rates = [daily_failure_rate(a) for a in afr_pct]
        self.rng = random.Random(seed)
        self.day = 0

    def due(self, item: int, submit_s: int, cluster: Cluster) -> list[int]:
        failed = []
        while self.day < submit_s // 86_400:
            self.day += 1
            failed += [
                i for i, rate in enumerate(self.rates) if cluster.up[i] and self.rng.random() < rate
            ]
        return failed


class _Trace(FailurePlan):
    def __init__(self, path: Path) -> None:
        rows = read_rows(path, "failure trace", ValueError)[1:]
        try:
            self.pending = sorted((int(float(t)), int(float(i))) for i, t, *_ in rows)
        except ValueError as exc:
            raise ValueError(f"{path}: expected rows of node id, failure time (s): {exc}") from exc

    def due(self, item: int, submit_s: int, cluster: Cluster) -> list[int]:
        failed = []
        while self.pending and self.pending[0][0] <= submit_s:
            _, node = self.pending.pop(0)
            failed += [int(i) for i in (cluster.ids == node).nonzero()[0]]
        return failed


class PlacementSimulationConfig(ScenarioConfig):
    """Replay a workload onto a node set with the chosen placer (D-Rex's simulator)."""

    kind: Literal["placement_simulation"] = "placement_simulation"
    requires: ClassVar[tuple[str, ...]] = ("placement",)
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "items_stored",
        "items_rejected",
        "storage_efficiency",
        "write_throughput_mb_s",
        "read_throughput_mb_s",
        "scheduling_time_per_item_ms",
        "items_lost",
        "items_below_target",
    )
    nodes: str = Field(
        f"{DATA_DIR}/nodes/10_most_used_nodes.csv",
        description="node CSV: id,storage_size,write_bandwidth,read_bandwidth,annual_failure_rate",
    )
    node_list: list[NodeSpec] | None = Field(
        None, description="nodes declared inline (replaces `nodes`)"
    )
    workload: str = Field(
        f"{DATA_DIR}/workloads/MEVA_merged.csv",
        description="trace CSV: size (MB), submit time (s), access type (2 = write)",
    )
    replay: int = Field(1, ge=1, le=10_000, description="times the trace is repeated")
    reliability: float | Literal["random"] = Field(
        0.99, description="target of every item, or 'random': c ~ U{0..5} nines, R ~ U[base, 1]"
    )
    rng: TargetRng = Field(
        "numpy",
        description="generator of random targets: numpy, or glibc (the reference's rand(), "
        "to compare with its runs number for number)",
    )
    duration_days: float = Field(365.0, gt=0, description="how long items must survive")
    max_n: int = Field(0, ge=0, le=1000, description="most chunks per item (0: all nodes)")
    fixed_n: int = Field(6, ge=1, le=1000, description="n for placers that do not choose it")
    fixed_k: int = Field(4, ge=1, le=1000, description="k for placers that do not choose it")
    failures: Failures = Field(default_factory=NoFailures, description="node failures")
    ec_times: str = Field(f"{DATA_DIR}/ec_times", description="measured encode/decode tables")
    records: bool | Literal["reference"] = Field(
        True,
        description="write one record per item (items.csv.gz); 'reference' also writes the "
        "stored items in the reference simulator's shape (per_item.csv)",
    )
    seed: int | None = Field(
        None, ge=0, description="seed of targets and failures (default: run seed)"
    )

    @field_validator("records", mode="before")
    @classmethod
    def _records(cls, value: object) -> object:
        if isinstance(value, bool):
            return value
        choices: dict[str, bool | str] = {"true": True, "false": False, "reference": "reference"}
        text = str(value).strip().lower()
        if text not in choices:
            raise ValueError("choose true, false or reference")
        return choices[text]

    @model_validator(mode="after")
    def _check(self) -> Self:
        if isinstance(self.reliability, float) and not 0 < self.reliability < 1:
            raise ValueError(
                f"reliability={self.reliability} must lie strictly between 0 and 1 (or be 'random')"
            )
        if self.rng == "glibc" and self.seed is not None and self.seed >= 2**32:
            raise ValueError(f"seed={self.seed}: glibc's srand takes 0 .. 2**32 - 1")
        if self.fixed_k > self.fixed_n:
            raise ValueError(f"fixed_k={self.fixed_k} > fixed_n={self.fixed_n}")
        if self.node_list is not None and not self.node_list:
            raise ValueError("node_list is empty: declare at least one node (or drop it)")
        paths = [("workload", self.workload), ("ec_times", self.ec_times)]
        if self.node_list is None:
            paths.append(("nodes", self.nodes))
        if isinstance(self.failures, TraceFailures):
            paths.append(("failures.path", self.failures.path))
        for name, value in paths:
            if not data_path(value).exists():
                raise ValueError(f"{name}={value!r}: no such file or folder")
        # Read the inputs now, so a malformed file stops the run before anything starts.
        try:
            if self.node_list is None:
                read_nodes(data_path(self.nodes))
            read_workload(data_path(self.workload), 1, 0.5, 0)
        except (NodeSetError, WorkloadError) as exc:
            raise ValueError(str(exc)) from None
        return self

    def build(self) -> Scenario:
        """Create the scenario."""
        return PlacementSimulation(self)

    @classmethod
    def comparison(cls, runs: list[FinishedJob]) -> tuple[str, list[dict[str, Any]]] | None:
        """Items stored per placer relative to the best state-of-the-art baseline."""
        rows = relative_to_best_baseline(runs)
        title = (
            "items stored relative to the best baseline (HDFS 3-rep, EC(3,2), EC(6,3), "
            "GlusterFS, DAOS) of the same experiment and seed: mean and 95 % interval over seeds"
        )
        return title, rows


class PlacementSimulation:
    """One replay per trial: place every item, record outcomes, plot storage over time."""

    def __init__(self, config: PlacementSimulationConfig) -> None:
        self.config = config

    def run(self, ctx: RunContext) -> None:
        """One trial."""
        cfg = self.config
        seed = ctx.seed if cfg.seed is None else cfg.seed
        specs = cfg.node_list if cfg.node_list is not None else read_nodes(data_path(cfg.nodes))
        cluster = Cluster.from_specs(specs, cfg.duration_days)
        target = None if cfg.reliability == "random" else float(cfg.reliability)
        workload = read_workload(data_path(cfg.workload), cfg.replay, target, seed, cfg.rng)
        times = CodingTimes.load(data_path(cfg.ec_times))
        placer = ctx.component("placement", Placer)  # type: ignore[type-abstract]
        scheduler: Scheduler = getattr(placer, "scheduler", None) or PlacerScheduler(
            placer, cfg.fixed_n, cfg.fixed_k
        )
        # The reference prices items at size 0 until one moves its reference size.
        context = SchedulingContext(cfg.max_n, times, NearestSize(start_mb=0.0))
        simulator = Simulator(
            cluster,
            scheduler,
            context,
            times,
            self._failures(specs, seed),
            keep_records=bool(cfg.records),
        )
        with ctx.progress.bar(f"trial {ctx.trial}: {scheduler.name}", len(workload)) as bar:
            result = simulator.run(workload, bar.update)
        ctx.log_metrics(result.metrics())
        for reason, count in result.rejections.items():
            ctx.log_metric(f"rejected_{reason.replace(' ', '_')}", count)
        if cfg.records:
            _write_records(result, ctx.run_dir / "items.csv.gz")
        if cfg.records == "reference":
            write_reference_records(result, ctx.run_dir / "per_item.csv")
        _plot(result, cluster, scheduler.name, ctx.run_dir)

    def _failures(self, specs: list[NodeSpec], seed: int) -> FailurePlan | None:
        plan = self.config.failures
        if isinstance(plan, NodeAtItem):
            return _OneNode(plan.item, plan.node, seed)
        if isinstance(plan, DailyFailures):
            return _Daily([s.afr_pct for s in specs], seed)
        if isinstance(plan, TraceFailures):
            return _Trace(data_path(plan.path))
        return None


def _write_records(result: SimulationResult, path: Path) -> None:
    r = result.records
    columns = (
        "item",
        "size_mb",
        "n",
        "k",
        "nodes",
        "write_s",
        "read_s",
        "write_total_s",
        "write_slowest_s",
        "read_total_s",
        "encode_s",
        "decode_s",
        "schedule_us",
        "outcome",
    )
    with gzip.open(path, "wt", compresslevel=1, newline="") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(zip(*(getattr(r, c) for c in columns), strict=True))


def _plot(result: SimulationResult, cluster: Cluster, name: str, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (used, fill) = plt.subplots(1, 2, figsize=(11, 4))
    items, storage = zip(*result.storage_curve, strict=True)
    used.plot(items, [s / 1e6 for s in storage], color="tab:blue")
    used.axhline(
        float(cluster.capacity.sum()) / 1e6, color="grey", linestyle="--", label="capacity"
    )
    used.set(
        xlabel="items submitted", ylabel="storage used (TB)", title=f"{name}: storage over time"
    )
    used.legend()
    labels = [str(int(i)) for i in cluster.ids]
    fraction = 1 - cluster.free / cluster.capacity
    fill.bar(labels, fraction, color=["tab:blue" if up else "tab:red" for up in cluster.up])
    fill.set(xlabel="node", ylabel="fraction full", ylim=(0, 1), title="fill per node at the end")
    fig.tight_layout()
    fig.savefig(out_dir / "storage_over_time.png", dpi=110)
    plt.close(fig)
