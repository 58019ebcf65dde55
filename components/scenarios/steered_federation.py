"""``scenario=steered_federation``: hierarchical FL over the recipe's sites, steered by carbon.

The sites form the tree: the root site is the leader, every other site with devices is an
edge aggregator over its devices, and a site's devices train on its grid. Before each round
a participation schedule (:mod:`components.fl.participation`) picks the hour the round starts
(one round is one hour of the sites' carbon series, from ``start_hour``) and the sites whose
devices train; a trained device's energy is its training tasks' CPU seconds times its site's
machine profile's power per busy thread, charged at its site's intensity that hour. Model
bytes over each site's link (one model down, one up per link used) are charged at
``network_kwh_per_gb`` at the intensity of the site below the link. Where the models travel
as proxies over the storage fabric (``dataflow.connector=fabric``, its containers at the
sites), the bytes every process wrote to and read from a site's containers that round (chunks,
measured by the containers) are charged the same way at that site's intensity: the storage's
share.

Per round: accuracy, the hour, and per site the devices, energy, carbon, bytes its containers
moved and the seconds until its aggregate was ready (``time_s_<site>``, on the site's own
pool where ``sites.<name>.workers`` gives it one); bytes per tier, and the link time (bytes
over bandwidth plus latency, the slowest link used). Per run: the final accuracy, carbon
(training, communication, storage, their shares), the carbon and hours until the accuracy
first reached ``target_accuracy``, and the accuracy-vs-carbon curve (a plot).

With ``steer=agent`` (the default) the schedule runs in a Colmena agent
(:class:`components.fl.agent.ParticipationAgent`) that hears every round's completion as an
event on the ``events`` fabric (the round, its accuracy, each site's devices and measured
energy) and answers with the next round's plan on another topic; the federation waits for a
plan at most ``plan_timeout_s``. ``steer=inline`` calls the same schedule in the federation's
thread, with no fabric (the same decisions; for quick comparisons).

Compare the schedules with a sweep over ``scenario.policy``
(``recipes/composite/carbon_schedules.yaml``).
"""

from __future__ import annotations

import copy
import math
import pickle
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from components.base import RunContext, Scenario, ScenarioConfig
from components.energy.profiles import profile
from components.fl.participation import RoundPlan, Schedule, ScheduleKind, SiteLoad, schedule
from components.fl.topology import Node, NodeKind, Topology, TwoTier
from components.pricing.protocol import J_PER_KWH
from components.runtime.trial import TASK_PATH_FAULTS, TaskTrial
from components.sites import Site, Sites

if TYPE_CHECKING:
    from components.fl.agent import ParticipationAgent, PlanChannel

# Aslan et al. (2018), J. Industrial Ecology: 0.06 kWh/GB for fixed-line internet transmission
# in 2015, halving about every two years since: an upper bound for today's links.
NETWORK_KWH_PER_GB = 0.06
FABRIC_PRINCIPAL = "loom"  # the default topology's principal: the agent's topics are its


class SteeredFederationConfig(ScenarioConfig):
    """Hierarchical FL over the sites; a Colmena agent picks each round's hour and sites."""

    kind: Literal["steered_federation"] = "steered_federation"
    requires: ClassVar[tuple[str, ...]] = ("executor", "dataflow", "fl")
    uses_sites: ClassVar[bool] = True
    fault_kinds: ClassVar[frozenset[str]] = TASK_PATH_FAULTS
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "final_accuracy",
        "carbon_total_g",
        "carbon_to_target_g",
        "hours",
        "device_rounds",
        "comm_carbon_share",
        "storage_carbon_share",
    )

    policy: ScheduleKind = Field(
        "carbon_aware", description="fixed | random | threshold | carbon_aware | oracle"
    )
    share: float = Field(0.6, gt=0, le=1, description="share of devices a round trains")
    max_skip: int = Field(2, ge=0, description="rounds in a row a site may sit out")
    max_defer_h: int = Field(2, ge=0, description="hours a round may wait for a cleaner hour")
    defer_budget: float = Field(0.2, ge=0, description="hours of waiting in all, per round")
    start_hour: int = Field(
        24, ge=24, description="first hour into the sites' series (a day before: the forecast)"
    )
    target_accuracy: float = Field(
        0.8, gt=0, lt=1, description="accuracy whose carbon and hours are reported"
    )
    network_kwh_per_gb: float = Field(
        NETWORK_KWH_PER_GB, ge=0, description="energy of moving a GB over a link (kWh)"
    )
    steer: Literal["agent", "inline"] = Field(
        "agent",
        description="agent: a Colmena agent plans each round from round events on the events "
        "fabric; inline: the same schedule called in the federation's thread, no fabric",
    )
    plan_timeout_s: float = Field(
        60.0, gt=0, description="steer=agent: how long a round waits for the agent's plan"
    )

    def needs(self) -> tuple[str, ...]:
        """The event fabric too when an agent steers over it."""
        return (*self.requires, "events") if self.steer == "agent" else self.requires

    def check_components(self, groups: Mapping[str, Any]) -> list[str]:
        """The fl group's tree and participation are the sites' and the schedule's here."""
        fl = groups.get("fl")
        problems = []
        if fl is not None and getattr(fl, "mode", "sync") != "sync":
            problems.append(
                "scenario=steered_federation steers synchronous rounds: fl.mode=async is not "
                "steered (use fl.mode=sync with fl/strategy=fedavg, fedprox or fedsgd)"
            )
        if fl is not None and getattr(fl, "participation", 1.0) != 1.0:
            problems.append(
                f"fl.participation={fl.participation}: scenario=steered_federation's schedule "
                "picks each round's sites (scenario.policy, scenario.share); drop it"
            )
        topology = getattr(fl, "topology", None)
        if topology is not None and topology.model_dump() != TwoTier().model_dump():
            problems.append(
                "fl.topology is set, but scenario=steered_federation builds the tree from the "
                "recipe's sites (a site's devices under its aggregator); drop it"
            )
        return problems

    def check_sites(self, sites: Mapping[str, Site]) -> list[str]:
        """Sites with devices to train."""
        problems = []
        if not any(site.devices for site in sites.values()):
            problems.append("sites: no site has devices: give the edge sites devices: <n>")
        return problems

    def build(self) -> Scenario:
        """Create the scenario."""
        return SteeredFederation(self)


def site_topology(sites: Sites) -> tuple[Topology, dict[str, str]]:
    """The FL tree of ``sites`` and each worker's site.

    The root site is the leader; every other site with devices, or with sites below it, is
    an aggregator; a site's devices (``<site>-<i>``) are workers under it.
    """
    keep: set[str] = set()
    for name, site in sites.sites.items():  # a site with devices, and every site above it
        if site.devices:
            node: str | None = name
            while node is not None:
                keep.add(node)
                node = sites.sites[node].parent
    nodes: dict[str, Node] = {}
    home: dict[str, str] = {}
    for name in sites.sites:
        if name not in keep:
            continue
        devices = [f"{name}-{i}" for i in range(sites.sites[name].devices)]
        below = [c for c in sites.children(name) if c in keep]
        kind = NodeKind.LEADER if name == sites.root else NodeKind.AGGREGATOR
        nodes[name] = Node(name, kind, tuple(below + devices), {"site": name})
        for device in devices:
            nodes[device] = Node(device, NodeKind.WORKER, (), {"site": name})
            home[device] = name
    return Topology(nodes), home


def hourly_intensity(site: Site) -> Callable[[float], float]:
    """gCO2e/kWh of ``site`` during hour ``h`` of its series (or its constant)."""
    series = site.carbon_series()
    if series is None:
        constant = float(site.carbon)
        return lambda hour: constant
    t0 = series.times[0]
    return lambda hour: series.mean(t0 + hour * 3600, t0 + (hour + 1) * 3600)


class SteeredFederation:
    """One trial: the schedule's rounds, each charged by carbon per site."""

    def __init__(self, config: SteeredFederationConfig) -> None:
        self.config = config

    def run(self, ctx: RunContext) -> None:
        """Train round by round as the schedule decides; record carbon, accuracy and time."""
        import torch  # here: listing and validating configs should not import it

        from components.fl import jobs
        from components.fl.data import load
        from components.fl.federation import Federation
        from components.fl.protocol import FederatedLearning
        from components.fl.strategies import Update
        from components.fl.training import evaluate, initial_params

        cfg = self.config
        sites = Sites(ctx.sites)
        topology, home = site_topology(sites)
        fl = copy.copy(ctx.component("fl", FederatedLearning))  # type: ignore[type-abstract]
        fl.topology = topology
        data = load(fl.dataset, ctx.seed, fl.samples)
        plan = fl.plan(ctx.seed, data.features, data.classes)
        jobs.federation_data(plan.data)
        net = jobs.model_of(plan.model)
        start = Update(initial_params(net, ctx.seed), 0)
        model_bytes = len(pickle.dumps(start, protocol=5))
        x_test, y_test = torch.as_tensor(data.x_test), torch.as_tensor(data.y_test)

        intensity = {name: hourly_intensity(site) for name, site in sites.sites.items()}
        watts = {name: profile(site.profile).watts_per_thread for name, site in sites.sites.items()}
        # The schedule weighs a device's round by its site's power (the seconds are alike)
        # and a site's round by the models over its link (the links above it are shared).
        link_kwh = 2 * model_bytes / 1e9 * cfg.network_kwh_per_gb
        loads = {
            name: SiteLoad(site.devices, watts[name] / J_PER_KWH, intensity[name], link_kwh)
            for name, site in sites.sites.items()
            if site.devices
        }
        chooser = schedule(
            cfg.policy,
            loads,
            share=cfg.share,
            max_skip=cfg.max_skip,
            max_defer_h=cfg.max_defer_h,
            defer_budget=cfg.defer_budget,
            seed=ctx.seed,
        )
        workers_of: dict[str, list[str]] = defaultdict(list)
        for worker, site in home.items():
            workers_of[site].append(worker)

        rounds: list[dict[str, Any]] = []
        hour = float(cfg.start_hour)
        hours: dict[int, float] = {}
        steering: _Steering = _Inline(chooser)  # or the agent, once the trial is open

        def choose(index: int) -> list[str]:
            nonlocal hour
            planned = steering.plan(index, hour)
            hours[index] = planned.hour
            hour = planned.hour + 1
            picked = {w for s, n in planned.devices.items() for w in workers_of[s][:n]}
            return [w for w in topology.workers if w in picked]

        fabric_seen: dict[str, float] = {}  # bytes moved per container, as last counted

        def fabric_bytes() -> dict[str, float]:
            """Bytes moved to and from each site's containers since the last call."""
            now = trial.movers.store_metrics() if trial.movers is not None else {}
            moved = {}
            for name in sites.sites:
                total = 0.0
                for container in sites.container_names(name):
                    count = now.get(f"data_fabric_bytes_moved_{container}", 0.0)
                    total += count - fabric_seen.get(container, 0.0)
                    fabric_seen[container] = count
                moved[name] = total
            return moved

        def on_round(entry: dict[str, float], trained: dict[str, float]) -> None:
            index = int(entry["round"])
            at = hours[index]
            row: dict[str, Any] = {**entry, "hour": at}
            used_links = _links_used(sites, {home[w] for w in trained})
            training_g = comm_g = storage_g = link_s = 0.0
            for name, moved in fabric_bytes().items():
                row[f"bytes_fabric_{name}"] = moved
                storage_g += moved / 1e9 * cfg.network_kwh_per_gb * intensity[name](at)
            kwh_of: dict[str, float] = {}
            devices_of: dict[str, int] = {}
            for name in sites.sites:
                cpu_s = sum(s for w, s in trained.items() if home[w] == name)
                kwh = kwh_of[name] = cpu_s * watts[name] / J_PER_KWH
                g = kwh * intensity[name](at)
                devices = devices_of[name] = sum(1 for w in trained if home[w] == name)
                row[f"devices_{name}"] = devices
                row[f"cpu_s_{name}"] = cpu_s
                row[f"energy_j_{name}"] = kwh * J_PER_KWH
                row[f"carbon_g_{name}"] = g
                if name in federation.aggregated_s:  # its aggregate ready, from the round's start
                    row[f"time_s_{name}"] = federation.aggregated_s[name]
                training_g += g
            for name in used_links:  # one model down and one up over the link above ``name``
                link = sites.sites[name].link
                assert link is not None
                gigabytes = 2 * model_bytes / 1e9
                comm_g += gigabytes * cfg.network_kwh_per_gb * intensity[name](at)
                link_s = max(
                    link_s, 2 * model_bytes / 1e6 / link.bandwidth_mb_s + 2e-3 * link.latency_ms
                )
                row[f"bytes_tier_{sites.tier(name)}"] = (
                    row.get(f"bytes_tier_{sites.tier(name)}", 0) + 2 * model_bytes
                )
            row.update(
                {
                    "carbon_training_g": training_g,
                    "carbon_comm_g": comm_g,
                    "carbon_storage_g": storage_g,
                    "link_s": link_s,
                }
            )
            rounds.append(row)
            steering.report(
                {
                    "round": index,
                    "next_hour": at + 1,
                    "accuracy": entry["accuracy"],
                    "kwh": kwh_of,
                    "devices": devices_of,
                    "end": index + 1 >= plan.rounds,
                }
            )

        def test(update: Update) -> tuple[float, float]:
            return evaluate(net, update.state, x_test, y_test)

        trial = TaskTrial(ctx, by_reference=(f"{Update.__module__}.{Update.__qualname__}",))
        began = time.perf_counter()
        with ExitStack() as stack, trial as path:
            if cfg.steer == "agent":
                steering = stack.enter_context(_agent(ctx, chooser, cfg.plan_timeout_s))
            federation = Federation(plan, path, test)
            federation.choose = choose
            federation.on_round = on_round
            description = f"trial {ctx.trial}: {cfg.policy} over {len(loads)} sites"
            with ctx.progress.bar(description, plan.rounds) as bar:
                federation.on_progress = bar.update
                final = federation.run_sync(start, model_bytes)
        makespan = time.perf_counter() - began
        accuracy, _ = test(final)
        ctx.write_records("rounds", rounds)
        trial.record(
            {**_summary(rounds, cfg, accuracy, makespan, len(loads)), **steering.metrics()}
        )
        _plot(rounds, ctx, f"{cfg.policy}: accuracy against carbon")


class _Steering:
    """How the federation gets its plans and tells of its rounds."""

    def plan(self, index: int, earliest_hour: float) -> RoundPlan:
        """The plan of round ``index``."""
        raise NotImplementedError

    def report(self, report: dict[str, Any]) -> None:
        """A round completed: what it measured."""
        raise NotImplementedError

    def metrics(self) -> dict[str, float]:
        """What the steering itself cost and lost."""
        return {}


class _Inline(_Steering):
    """The schedule, called in the federation's thread."""

    def __init__(self, chooser: Schedule) -> None:
        self.chooser = chooser

    def plan(self, index: int, earliest_hour: float) -> RoundPlan:
        """The schedule's plan."""
        return self.chooser.next_round(index, earliest_hour)

    def report(self, report: dict[str, Any]) -> None:
        """The schedule learns the round's energy."""
        self.chooser.observe(report["kwh"], report["devices"])


class _OverFabric(_Steering):
    """A :class:`ParticipationAgent` answering round events on the fabric."""

    def __init__(self, channel: PlanChannel, agent: ParticipationAgent) -> None:
        self.channel = channel
        self.agent = agent

    def plan(self, index: int, earliest_hour: float) -> RoundPlan:
        """Ask for the first plan; wait for each."""
        if index == 0:
            self.channel.report({"round": -1, "next_hour": earliest_hour})
        return self.channel.plan(index, lambda: self.agent.error)

    def report(self, report: dict[str, Any]) -> None:
        """Publish the round's event."""
        self.channel.report(report)

    def metrics(self) -> dict[str, float]:
        """Events sent and taken on both topics, the waits for plans, the agent's decisions."""
        channel, agent = self.channel, self.agent
        lost = max(0, channel.reports_sent - agent.reports_taken) + max(
            0, len(agent.planned) - len(channel.received)
        )
        waits = channel.waits_s or [0.0]
        return {
            "round_events": float(channel.reports_sent),
            "plans_received": float(len(channel.received)),
            "events_lost": float(lost),
            "duplicate_events": float(agent.duplicates),
            "plan_wait_ms_p50": 1e3 * statistics.median(waits),
            "plan_wait_ms_max": 1e3 * max(waits),
            "agent_decision_ms_mean": 1e3 * statistics.fmean(agent.decisions_s or [0.0]),
        }


@contextmanager
def _agent(ctx: RunContext, chooser: Schedule, timeout_s: float) -> Iterator[_OverFabric]:
    """A participation agent over two fresh topics of the run's fabric; stopped at exit."""
    from components.events.fabric import fabric_of
    from components.fl.agent import steering_over

    session = fabric_of(ctx).session(FABRIC_PRINCIPAL)
    with steering_over(session, chooser, timeout_s) as (agent, channel):
        yield _OverFabric(channel, agent)


def _links_used(sites: Sites, trained_at: set[str]) -> set[str]:
    """Sites whose link up carried a model: each trained site and every site above it."""
    used: set[str] = set()
    for name in trained_at:
        node: str | None = name
        while node is not None and node != sites.root:
            used.add(node)
            node = sites.sites[node].parent
    return used


def _summary(
    rounds: list[dict[str, Any]],
    cfg: SteeredFederationConfig,
    accuracy: float,
    makespan: float,
    site_count: int,
) -> dict[str, float]:
    """The run's metrics from its rounds."""
    training = sum(r["carbon_training_g"] for r in rounds)
    comm = sum(r["carbon_comm_g"] for r in rounds)
    storage = sum(r["carbon_storage_g"] for r in rounds)
    total = training + comm + storage
    reached = next((i for i, r in enumerate(rounds) if r["accuracy"] >= cfg.target_accuracy), None)
    hours = rounds[-1]["hour"] + 1 - cfg.start_hour if rounds else 0.0
    device_rounds = sum(v for r in rounds for k, v in r.items() if k.startswith("devices_"))
    metrics = {
        "final_accuracy": accuracy,
        "carbon_total_g": total,
        "carbon_training_g": training,
        "carbon_comm_g": comm,
        "carbon_storage_g": storage,
        "comm_carbon_share": comm / total if total > 0 else 0.0,
        "storage_carbon_share": storage / total if total > 0 else 0.0,
        "bytes_fabric": sum(
            v for r in rounds for k, v in r.items() if k.startswith("bytes_fabric_")
        ),
        "hours": hours,
        "device_rounds": float(device_rounds),
        "rounds_run": float(len(rounds)),
        "link_s_total": sum(r["link_s"] for r in rounds),
        "sites_training": float(site_count),
        "makespan_s": makespan,
        "reached_target": float(reached is not None),
    }
    if reached is not None:  # absent where the run never reached it (not a 0 that reads as free)
        upto = rounds[: reached + 1]
        metrics["carbon_to_target_g"] = sum(_round_carbon(r) for r in upto)
        metrics["hours_to_target"] = upto[-1]["hour"] + 1 - cfg.start_hour
        metrics["rounds_to_target"] = float(reached + 1)
    for name in _site_names(rounds):
        metrics[f"carbon_g_{name}"] = sum(r.get(f"carbon_g_{name}", 0.0) for r in rounds)
    assert all(math.isfinite(v) for v in metrics.values())
    return metrics


def _round_carbon(row: dict[str, Any]) -> float:
    """A round's carbon: training, communication and storage."""
    return float(row["carbon_training_g"] + row["carbon_comm_g"] + row["carbon_storage_g"])


def _site_names(rounds: list[dict[str, Any]]) -> list[str]:
    """The sites the rounds charged, sorted."""
    return sorted(
        {k.removeprefix("carbon_g_") for r in rounds for k in r if k.startswith("carbon_g_")}
    )


def _plot(rounds: list[dict[str, Any]], ctx: RunContext, title: str) -> None:
    """Accuracy against cumulative carbon, and carbon per site per round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rounds:
        return
    spent, cumulative = 0.0, []
    for r in rounds:
        spent += _round_carbon(r)
        cumulative.append(spent)
    sites = _site_names(rounds)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot(cumulative, [r["accuracy"] for r in rounds], marker=".")
    left.set_xlabel("carbon so far (g CO2e)")
    left.set_ylabel("test accuracy")
    left.set_ylim(0, 1)
    bottom = [0.0] * len(rounds)
    for site in sites:
        values = [r.get(f"carbon_g_{site}", 0.0) for r in rounds]
        right.bar(range(len(rounds)), values, bottom=bottom, label=site)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    right.set_xlabel("round")
    right.set_ylabel("training carbon (g CO2e)")
    right.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(ctx.run_dir / f"steered-trial-{ctx.trial:03d}.png", dpi=110)
    plt.close(fig)
