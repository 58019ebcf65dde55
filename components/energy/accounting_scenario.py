"""``scenario=accounting``: the accounting study (green-access prototype, arXiv 2501.09557).

One trial simulates every user under every scheme (node-hours, EBA, CBA) from the published
profiles (see :mod:`components.energy.accounting`, which says which cells are imputed) and logs,
per scheme × policy, energy, carbon credits, core-seconds, makespan and tasks per endpoint,
and two headlines: (a) the prototype's: MinEnergy and MinCredit against MinRuntime under CBA;
(b) the paper's question: the energy cost-minimising users consume when charged by
node-hours, by energy or by carbon.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from components.base import RunContext, Scenario, ScenarioConfig
from components.energy.accounting import (
    ENDPOINT_ORDER,
    PolicyResult,
    Scheme,
    headline,
    simulate,
)

SCHEMES: tuple[Scheme, ...] = ("node_hours", "energy", "carbon")
# The prototype's results (mean of 3 runs): CBA credits g, energy J, makespan s.
PROTOTYPE = {"min_credit": (0.230, 733.4, 137.6), "min_energy": (0.278, 606.6, 188.6),
             "min_runtime": (0.263, 905.5, 188.0)}  # fmt: skip


class AccountingConfig(ScenarioConfig):
    """Simulated users pick endpoints by policy under each charging scheme."""

    kind: Literal["accounting"] = "accounting"
    requires: ClassVar[tuple[str, ...]] = ()
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "carbon.min_energy_energy_saving",
        "carbon.min_credit_energy_saving",
        "carbon.min_credit_credit_saving",
        "min_credit_energy_saving_energy_vs_node_hours",
        "min_credit_energy_saving_carbon_vs_node_hours",
    )
    policies: list[str] = Field(
        ["min_credit", "min_energy", "min_runtime"],
        description="one user per policy: min_credit, min_energy, min_runtime, fixed:<endpoint>",
    )
    tasks_per_function: int = Field(20, ge=1, le=100_000, description="tasks of each function")
    profiles: Literal["published"] = Field(
        "published", description="where task profiles come from (published: accounting.md)"
    )

    @field_validator("policies")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        allowed = {"min_credit", "min_energy", "min_runtime"} | {
            f"fixed:{e}" for e in ENDPOINT_ORDER
        }
        bad = [p for p in value if p not in allowed]
        if bad or not value:
            raise ValueError(f"{bad or value}: each policy must be one of {sorted(allowed)}")
        return value

    def build(self) -> Scenario:
        """Create the scenario."""
        return Accounting(self)


class Accounting:
    """One trial: every scheme, every policy."""

    def __init__(self, config: AccountingConfig) -> None:
        self.config = config

    def run(self, ctx: RunContext) -> None:
        """Simulate, log, plot."""
        cfg = self.config
        by_scheme = {s: simulate(cfg.policies, s, cfg.tasks_per_function) for s in SCHEMES}
        rows = []
        for scheme, results in by_scheme.items():
            for r in results:
                prefix = f"{scheme}.{r.policy}"
                ctx.log_metrics({
                    f"{prefix}.energy_j": r.energy_j,
                    f"{prefix}.carbon_credits_g": r.carbon_credits_g,
                    f"{prefix}.core_s": r.core_s, f"{prefix}.makespan_s": r.makespan_s,
                    **{f"{prefix}.tasks.{e}": float(r.tasks[e]) for e in ENDPOINT_ORDER},
                })  # fmt: skip
                rows.append({"scheme": scheme, **_row(r)})
            ctx.log_metrics({f"{scheme}.{k}": v for k, v in headline(results).items()})
        base = _energy(by_scheme["node_hours"], "min_credit")
        if base:
            for scheme in ("energy", "carbon"):
                used = _energy(by_scheme[scheme], "min_credit")
                ctx.log_metric(f"min_credit_energy_saving_{scheme}_vs_node_hours", 1 - used / base)
        ctx.write_records("policies", rows)
        _plot(by_scheme, ctx.run_dir)


def _energy(results: list[PolicyResult], policy: str) -> float:
    return next((r.energy_j for r in results if r.policy == policy), 0.0)


def _row(r: PolicyResult) -> dict[str, object]:
    return {"policy": r.policy, "energy_j": r.energy_j, "carbon_credits_g": r.carbon_credits_g,
            "core_s": r.core_s, "makespan_s": r.makespan_s,
            "tasks": {e: r.tasks[e] for e in ENDPOINT_ORDER}, "emulated": False}  # fmt: skip


def _plot(by_scheme: dict[Scheme, list[PolicyResult]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (energy, tasks) = plt.subplots(1, 2, figsize=(11, 4.2))
    markers = {"node_hours": "s", "energy": "o", "carbon": "^"}
    for scheme, results in by_scheme.items():
        for r in results:
            energy.scatter(r.core_s, r.energy_j, marker=markers[scheme], s=50,
                           label=f"{scheme}: {r.policy}")  # fmt: skip
    for policy, (_, joules, _) in PROTOTYPE.items():
        energy.axhline(joules, color="grey", linestyle=":", linewidth=0.8)
        energy.annotate(f"prototype {policy}", (energy.get_xlim()[0], joules), fontsize=7)
    energy.set(xlabel="core-seconds (runtime)", ylabel="dynamic energy (J)",
               title="energy vs runtime per policy and scheme")  # fmt: skip
    energy.legend(fontsize=7)
    carbon = by_scheme["carbon"]
    bottom = [0.0] * len(carbon)
    for endpoint in ENDPOINT_ORDER:
        counts = [r.tasks[endpoint] for r in carbon]
        tasks.bar([r.policy for r in carbon], counts, bottom=bottom, label=endpoint)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    tasks.set(ylabel="tasks", title="tasks per endpoint (CBA)")
    tasks.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "accounting.png", dpi=110)
    plt.close(fig)
