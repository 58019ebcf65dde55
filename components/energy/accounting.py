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
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from components.energy.base import EnergyReading
from components.energy.profiles import ENDPOINTS, MachineProfile
from components.pricing.base import Pricing

Policy = Literal["min_credit", "min_energy", "min_runtime"] | str  # or "fixed:<endpoint>"
Scheme = Literal["node_hours", "energy", "carbon"]
FUNCTIONS = ("matmul", "cholesky", "pagerank", "molecular")
ENDPOINT_ORDER = ("zen3", "cascade_lake", "desktop", "ice_lake")

# Cholesky, the worked example: runtime (s) and adjusted energy (J) = dynamic + P_idle/cores·T.
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
        adjusted, "estimated", profile.runtime_s, tdp_w=machine.tdp_w, share=1 / machine.cores,
        carbon_intensity_g_per_kwh=machine.carbon_intensity_g_per_kwh,
        embodied_g_per_kwh=machine.embodied_g_per_kwh,
    )  # fmt: skip


def charged_j(profile: TaskProfile, machine: MachineProfile) -> float:
    """EBA: ((P_dyn + P_idle/cores) + TDP/cores) / 2 × T for a task on one core."""
    return Pricing("energy", 1, 1.0).charge(_reading(profile, machine))["charge_energy_j"]


def credit(profile: TaskProfile, machine: MachineProfile, scheme: Scheme) -> float:
    """What one task costs on ``machine`` under ``scheme`` (node-hours: one core's share)."""
    if scheme == "node_hours":
        return profile.runtime_s / 3600  # one core of the node for the task's runtime
    return Pricing(scheme, 1, 1.0).charge(_reading(profile, machine))["charge"]


def choose(
    policy: Policy, row: dict[str, TaskProfile], scheme: Scheme
) -> str:  # fmt: skip
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


@dataclass
class PolicyResult:
    """One user's totals."""

    policy: str
    tasks: Counter[str] = field(default_factory=Counter)
    energy_j: float = 0.0  # dynamic energy, as the prototype's job log records it
    charged_energy_j: float = 0.0
    carbon_credits_g: float = 0.0
    node_hours: float = 0.0
    core_s: float = 0.0
    makespan_s: float = 0.0


def simulate(
    policies: list[str], scheme: Scheme, tasks_per_function: int = 20,
    profiles: dict[str, dict[str, TaskProfile]] | None = None,
) -> list[PolicyResult]:  # fmt: skip
    """Every user's workload, submitted at once, on endpoints whose cores are shared by all.

    Tasks start in submission order on the first free core of their endpoint.
    """
    table = profiles or published_profiles()
    free = {e: [0.0] * ENDPOINTS[e].cores for e in ENDPOINT_ORDER}
    for cores in free.values():
        heapq.heapify(cores)
    results = [PolicyResult(p) for p in policies]
    workload = [f for f in FUNCTIONS for _ in range(tasks_per_function)][::-1]
    for function in workload:  # users interleave, one task each in turn
        for result in results:
            endpoint = choose(result.policy, table[function], scheme)
            profile, machine = table[function][endpoint], ENDPOINTS[endpoint]
            start = heapq.heappop(free[endpoint])
            end = start + profile.runtime_s
            heapq.heappush(free[endpoint], end)
            result.tasks[endpoint] += 1
            result.energy_j += profile.dynamic_j
            result.charged_energy_j += charged_j(profile, machine)
            result.carbon_credits_g += credit(profile, machine, "carbon")
            result.node_hours += profile.runtime_s / 3600
            result.core_s += profile.runtime_s
            result.makespan_s = max(result.makespan_s, end)
    return results


def headline(results: list[PolicyResult]) -> dict[str, float]:
    """The prototype's comparisons: energy and credits of each policy against MinRuntime."""
    by = {r.policy: r for r in results}
    runtime = by.get("min_runtime")
    out: dict[str, float] = {}
    if runtime is None or not runtime.energy_j:
        return out
    for name in ("min_energy", "min_credit"):
        if name in by:
            out[f"{name}_energy_saving"] = 1 - by[name].energy_j / runtime.energy_j
            out[f"{name}_credit_saving"] = 1 - by[name].carbon_credits_g / runtime.carbon_credits_g
    return out
