"""The accounting study: simulated users choose endpoints by policy under a charging scheme.

Each user submits the prototype's workload (20 each of four functions, in reverse order) to
the four endpoints of the green-access prototype. A policy picks, for every task, the endpoint
that minimises its predicted credit under the active scheme (MinCredit), its predicted energy
(MinEnergy), its runtime (MinRuntime), or always the same one (fixed). Predictions are the
profiles themselves, as the prototype's are their running means. Each task holds one core.

Profiles (runtime s, dynamic energy J per task) come from ``accounting.md``:

- Cholesky on all four endpoints: the prototype's worked example (runtime, adjusted energy,
  from which the idle share P_idle/cores × T is taken off to leave the dynamic energy);
- the other functions on Desktop and Zen3: the means of ``task_profiles.csv``;
- the other functions on Cascade Lake and Ice Lake: not published. They are **imputed**:
  the function's Desktop profile scaled by that endpoint's Cholesky ratio to Desktop (runtime
  and energy separately). The prototype imputed missing cells with KNN over counter rates,
  which cannot be redone without its data.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from components.energy.profiles import ENDPOINTS, MachineProfile
from components.energy.protocol import EnergyReading
from components.pricing.protocol import Pricing

Policy = Literal["min_credit", "min_energy", "min_runtime"] | str  # or "fixed:<endpoint>"
Scheme = Literal["node_hours", "energy", "carbon"]
FUNCTIONS = ("matmul", "cholesky", "pagerank", "molecular")
ENDPOINT_ORDER = ("zen3", "cascade_lake", "desktop", "ice_lake")

# Cholesky, the worked example: runtime (s) and adjusted energy (J) = dynamic + P_idle/cores·T.
# Aligned as a table (one row per line); ruff format would give one cell per line.
_CHOLESKY = {"cascade_lake": (4.61, 35.8), "desktop": (5.20, 18.3), "ice_lake": (4.69, 19.7),
             "zen3": (5.65, 16.8)}  # fmt: skip
# task_profiles.csv means, (T s, dynamic E J): Desktop, Zen3.
_MEASURED = {
    "matmul": {"desktop": (7.26, 16.3), "zen3": (4.65, 0.36)},
    "pagerank": {"desktop": (33.3, 13.9), "zen3": (3.32, 20.3)},
    "molecular": {"desktop": (4.59, 2.63), "zen3": (0.167, 0.486)},
}


@dataclass(frozen=True)
class TaskProfile:
    """One function on one endpoint."""

    runtime_s: float
    dynamic_j: float
    imputed: bool = False


def _dynamic(endpoint: str, runtime: float, adjusted: float) -> float:
    machine = ENDPOINTS[endpoint]
    return adjusted - machine.idle_w / machine.cores * runtime


def published_profiles() -> dict[str, dict[str, TaskProfile]]:
    """Profiles by function, then endpoint, with the imputed cells marked."""
    cholesky = {e: TaskProfile(t, _dynamic(e, t, a)) for e, (t, a) in _CHOLESKY.items()}
    table: dict[str, dict[str, TaskProfile]] = {"cholesky": cholesky}
    ref = cholesky["desktop"]
    for function, cells in _MEASURED.items():
        row = {e: TaskProfile(t, j) for e, (t, j) in cells.items()}
        for endpoint in ("cascade_lake", "ice_lake"):
            scale_t = cholesky[endpoint].runtime_s / ref.runtime_s
            scale_j = cholesky[endpoint].dynamic_j / ref.dynamic_j
            row[endpoint] = TaskProfile(
                row["desktop"].runtime_s * scale_t, row["desktop"].dynamic_j * scale_j, True
            )
        table[function] = row
    return table


def _reading(profile: TaskProfile, machine: MachineProfile) -> EnergyReading:
    """A task on one core of ``machine``, as the engine's meter would report it."""
    adjusted = profile.dynamic_j + machine.idle_w / machine.cores * profile.runtime_s
    return EnergyReading(
        adjusted,
        "estimated",
        profile.runtime_s,
        tdp_w=machine.tdp_w,
        share=1 / machine.cores,
        carbon_intensity_g_per_kwh=machine.carbon_intensity_g_per_kwh,
        embodied_g_per_kwh=machine.embodied_g_per_kwh,
    )


def charged_j(profile: TaskProfile, machine: MachineProfile) -> float:
    """EBA: ((P_dyn + P_idle/cores) + TDP/cores) / 2 × T for a task on one core."""
    return Pricing("energy", 1, 1.0).charge(_reading(profile, machine))["charge_energy_j"]


def footprint_g(profile: TaskProfile, machine: MachineProfile) -> float:
    """A task's carbon: its energy with the idle share, at the grid's and embodied rates."""
    reading = _reading(profile, machine)
    return Pricing("carbon", 1, 1.0).charge(reading)["carbon_g"]


def credit(profile: TaskProfile, machine: MachineProfile, scheme: Scheme) -> float:
    """What one task costs on ``machine`` under ``scheme`` (node-hours: one core's share)."""
    if scheme == "node_hours":
        return profile.runtime_s / 3600  # one core of the node for the task's runtime
    return Pricing(scheme, 1, 1.0).charge(_reading(profile, machine))["charge"]


def choose(policy: Policy, row: dict[str, TaskProfile], scheme: Scheme) -> str:
    """The endpoint ``policy`` picks for a function with these profiles."""
    if policy.startswith("fixed:"):
        return policy.split(":", 1)[1]

    def key(endpoint: str) -> float:
        p, m = row[endpoint], ENDPOINTS[endpoint]
        if policy == "min_runtime":
            return p.runtime_s
        if policy == "min_energy":  # the prototype's E_pred: dynamic + idle share
            return p.dynamic_j + m.idle_w / m.cores * p.runtime_s
        return credit(p, m, scheme)

    return min(ENDPOINT_ORDER, key=key)


@dataclass(frozen=True)
class Submission:
    """How each user's client submits: the prototype's ``run_tasks`` defaults.

    ``slots`` tasks go up front; then, polling every ``poll_s``, a batch of ``batch`` goes
    once ``interval_s`` has passed since the last one and more than a batch of the user's
    tasks have finished since (the prototype's ``slots > min(batch, remaining)``).
    """

    slots: int = 32
    batch: int = 16
    interval_s: float = 10.0
    poll_s: float = 2.0


@dataclass(frozen=True)
class Variation:
    """Run-to-run spread of each task around its profile (coefficients of variation).

    The prototype's per-(endpoint, function) spread is runtime 0.089 and energy 0.206
    (``accounting.md``). Policies still choose by the profile, as predictions are means.
    """

    runtime_cv: float = 0.0
    energy_cv: float = 0.0
    seed: int = 0


@dataclass
class PolicyResult:
    """The totals of one user, or of every user following one policy."""

    policy: str
    users: int = 1
    tasks: Counter[str] = field(default_factory=Counter)
    energy_j: float = 0.0  # dynamic energy, as the prototype's job log records it
    carbon_g: float = 0.0  # footprint: energy with the idle share times (grid + embodied rate)
    charged_energy_j: float = 0.0
    carbon_credits_g: float = 0.0
    node_hours: float = 0.0
    core_s: float = 0.0
    makespan_s: float = 0.0
    wait_s: float = 0.0  # time tasks spent queued at an endpoint with every core busy

    def add(self, other: PolicyResult) -> None:
        """Fold another user's totals into these."""
        self.users += other.users
        self.tasks.update(other.tasks)
        self.energy_j += other.energy_j
        self.carbon_g += other.carbon_g
        self.charged_energy_j += other.charged_energy_j
        self.carbon_credits_g += other.carbon_credits_g
        self.node_hours += other.node_hours
        self.core_s += other.core_s
        self.makespan_s = max(self.makespan_s, other.makespan_s)
        self.wait_s += other.wait_s


def workload(tasks_per_function: int) -> list[str]:
    """One user's tasks in submission order: the functions in turn, then reversed."""
    count = tasks_per_function * len(FUNCTIONS)
    return [FUNCTIONS[i % len(FUNCTIONS)] for i in range(count)][::-1]


def _spread(rng: np.random.Generator | None, cv: float) -> float:
    """A factor of mean 1 and coefficient of variation ``cv`` (log-normal)."""
    if rng is None or cv == 0:
        return 1.0
    sigma2 = math.log1p(cv * cv)
    return float(rng.lognormal(-sigma2 / 2, math.sqrt(sigma2)))


@dataclass
class _User:
    result: PolicyResult
    todo: list[str]  # next task last, so pop() takes it
    pending: list[float] = field(default_factory=list)  # end times, a heap
    slots: int = 0
    last_submit_s: float = 0.0


class _Endpoints:
    """The four endpoints' cores; a task starts on the first core to free up (FIFO)."""

    def __init__(
        self, table: dict[str, dict[str, TaskProfile]], scheme: Scheme, variation: Variation
    ) -> None:
        self.table, self.scheme, self.variation = table, scheme, variation
        self.free = {e: [0.0] * ENDPOINTS[e].cores for e in ENDPOINT_ORDER}
        both = variation.runtime_cv or variation.energy_cv
        self.rng = np.random.default_rng(variation.seed) if both else None

    def run(self, user: _User, now: float, count: int) -> None:
        """Submit the user's next ``count`` tasks at ``now``."""
        for _ in range(count):
            function = user.todo.pop()
            endpoint = choose(user.result.policy, self.table[function], self.scheme)
            mean, machine = self.table[function][endpoint], ENDPOINTS[endpoint]
            task = TaskProfile(
                mean.runtime_s * _spread(self.rng, self.variation.runtime_cv),
                mean.dynamic_j * _spread(self.rng, self.variation.energy_cv),
            )
            start = max(now, heapq.heappop(self.free[endpoint]))
            end = start + task.runtime_s
            heapq.heappush(self.free[endpoint], end)
            heapq.heappush(user.pending, end)
            r = user.result
            r.tasks[endpoint] += 1
            r.energy_j += task.dynamic_j
            r.carbon_g += footprint_g(task, machine)
            r.charged_energy_j += charged_j(task, machine)
            r.carbon_credits_g += credit(task, machine, "carbon")
            r.node_hours += task.runtime_s / 3600
            r.core_s += task.runtime_s
            r.wait_s += start - now
            r.makespan_s = max(r.makespan_s, end)


def simulate(
    policies: list[str],
    scheme: Scheme,
    tasks_per_function: int = 20,
    profiles: dict[str, dict[str, TaskProfile]] | None = None,
    submission: Submission = Submission(),
    variation: Variation = Variation(),
) -> list[PolicyResult]:
    """Every user's workload, submitted as the prototype's clients do, on shared endpoints.

    Args:
        policies: One user per entry, in order (repeat a policy for more such users).
        scheme: What MinCredit users minimise.
        tasks_per_function: Each user's tasks of each function.
        profiles: Runtime and energy per function and endpoint (default: the published).
        submission: How clients submit.
        variation: Spread of each task's runtime and energy around its profile.

    Returns:
        One result per user, in the order of ``policies``.

    """
    if submission.batch >= submission.slots:
        # A client only submits when more than a batch of its slots are free.
        raise ValueError(f"batch={submission.batch}: must be smaller than slots={submission.slots}")
    endpoints = _Endpoints(profiles or published_profiles(), scheme, variation)
    users = [_User(PolicyResult(p), workload(tasks_per_function)[::-1]) for p in policies]
    for user in users:  # the up-front tasks; the prototype then counts slots from zero
        endpoints.run(user, 0.0, min(submission.slots, len(user.todo)))
    now, steps = 0.0, 0
    while any(u.todo for u in users):
        steps += 1
        now = steps * submission.poll_s
        for user in users:
            if not user.todo:
                continue
            count = min(submission.batch, len(user.todo))
            # The prototype tests `elapsed > interval` after sleeping; its requests take time,
            # so the poll at exactly `interval` passes. Hence >=.
            if now - user.last_submit_s >= submission.interval_s and user.slots > count:
                endpoints.run(user, now, count)
                user.slots -= submission.batch
                user.last_submit_s = now
            while user.pending and user.pending[0] <= now:
                heapq.heappop(user.pending)
                user.slots += 1
    return [u.result for u in users]


def by_policy(results: list[PolicyResult]) -> list[PolicyResult]:
    """Users' totals summed per policy, in first-seen order."""
    merged: dict[str, PolicyResult] = {}
    for r in results:
        if r.policy in merged:
            merged[r.policy].add(r)
        else:
            merged[r.policy] = PolicyResult(r.policy, 0)
            merged[r.policy].add(r)
    return list(merged.values())


def headline(results: list[PolicyResult]) -> dict[str, float]:
    """The prototype's comparisons: energy and credits per user of each policy vs MinRuntime."""
    by = {r.policy: r for r in by_policy(results)}
    runtime = by.get("min_runtime")
    out: dict[str, float] = {}
    if runtime is None or not runtime.energy_j:
        return out
    for name in ("min_energy", "min_credit"):
        if name in by:
            mine, base = by[name], runtime
            energy = (mine.energy_j / mine.users) / (base.energy_j / base.users)
            credits = (mine.carbon_credits_g / mine.users) / (base.carbon_credits_g / base.users)
            out[f"{name}_energy_saving"] = 1 - energy
            out[f"{name}_credit_saving"] = 1 - credits
    return out
