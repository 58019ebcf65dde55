"""``scenario=accounting``: the accounting study (green-access prototype, arXiv 2501.09557).

One trial simulates every user under every scheme (node-hours, EBA, CBA) and logs, per
scheme × policy, energy, carbon credits, core-seconds, makespan, queueing and tasks per
endpoint, and two headlines: (a) the prototype's: MinEnergy and MinCredit against MinRuntime
under CBA; (b) the paper's question: the energy cost-minimising users consume when charged by
node-hours, by energy or by carbon.

Profiles are the published ones (:mod:`components.scenarios.accounting_study` says which cells are
imputed) or, with ``profiles: measured``, an emulation from running the functions here
(:mod:`components.scenarios.accounting_functions`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from components.base import LoomModel, RunContext, Scenario, ScenarioConfig
from components.energy.profiles import local_profile
from components.scenarios.accounting_functions import MeasureConfig, emulated_profiles, measure_here
from components.scenarios.accounting_study import (
    ENDPOINT_ORDER,
    PolicyResult,
    Scheme,
    Submission,
    TaskProfile,
    Variation,
    by_policy,
    headline,
    published_profiles,
    simulate,
)

log = logging.getLogger(__name__)

SCHEMES: tuple[Scheme, ...] = ("node_hours", "energy", "carbon")
# The prototype's results (mean of 3 runs): CBA credits g, energy J, makespan s.
# Aligned as a table (one row per line); ruff format would give one cell per line.
PROTOTYPE = {"min_credit": (0.230, 733.4, 137.6), "min_energy": (0.278, 606.6, 188.6),
             "min_runtime": (0.263, 905.5, 188.0)}  # fmt: skip


class SubmissionConfig(LoomModel):
    """How each user's client submits (the prototype's ``run_tasks`` defaults)."""

    slots: int = Field(32, ge=2, le=100_000, description="tasks submitted up front")
    batch: int = Field(16, ge=1, le=100_000, description="tasks per later batch")
    interval_s: float = Field(10.0, ge=0, le=86_400, description="least time between batches")
    poll_s: float = Field(2.0, gt=0, le=3600, description="how often the client polls")

    @model_validator(mode="after")
    def _batch_below_slots(self) -> SubmissionConfig:
        if self.batch >= self.slots:
            raise ValueError(
                f"batch={self.batch}: must be smaller than slots={self.slots} (a client "
                "submits only when more than a batch of its slots are free)"
            )
        return self


class VariationConfig(LoomModel):
    """Spread of each task around its profile; 0 reproduces the profiles exactly."""

    runtime_cv: float = Field(0.0, ge=0, le=2, description="runtime CV (prototype: 0.089)")
    energy_cv: float = Field(0.0, ge=0, le=2, description="energy CV (prototype: 0.206)")


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
    users: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="population size: user i follows policies[i mod len]; default one each",
    )
    tasks_per_function: int = Field(20, ge=1, le=100_000, description="tasks of each function")
    profiles: Literal["published", "measured"] = Field(
        "published",
        description="published: accounting.md; measured: run the functions here and emulate",
    )
    submission: SubmissionConfig = Field(default_factory=SubmissionConfig)
    variation: VariationConfig = Field(default_factory=VariationConfig)
    measure: MeasureConfig = Field(default_factory=MeasureConfig)

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
        table = self._profiles(ctx)
        emulated = cfg.profiles == "measured"
        users = (
            cfg.policies
            if cfg.users is None
            else [cfg.policies[i % len(cfg.policies)] for i in range(cfg.users)]
        )
        sub = cfg.submission
        submission = Submission(sub.slots, sub.batch, sub.interval_s, sub.poll_s)
        # Every scheme sees the same task draws: the schemes differ only in what users choose.
        variation = Variation(
            cfg.variation.runtime_cv, cfg.variation.energy_cv, ctx.seed * 1_000 + ctx.trial
        )
        by_scheme = {
            s: by_policy(simulate(users, s, cfg.tasks_per_function, table, submission, variation))
            for s in SCHEMES
        }
        rows = []
        for scheme, results in by_scheme.items():
            for r in results:
                prefix = f"{scheme}.{r.policy}"
                ctx.log_metrics(
                    {
                        f"{prefix}.energy_j": r.energy_j,
                        f"{prefix}.carbon_g": r.carbon_g,
                        f"{prefix}.carbon_credits_g": r.carbon_credits_g,
                        f"{prefix}.charge_node_hours": r.node_hours,
                        f"{prefix}.charge_energy_j": r.charged_energy_j,
                        f"{prefix}.core_s": r.core_s,
                        f"{prefix}.makespan_s": r.makespan_s,
                        f"{prefix}.wait_s": r.wait_s,
                        **{f"{prefix}.tasks.{e}": float(r.tasks[e]) for e in ENDPOINT_ORDER},
                    }
                )
                rows.append({"scheme": scheme, **_row(r), "emulated": emulated})
            ctx.log_metrics({f"{scheme}.{k}": v for k, v in headline(results).items()})
        base = _energy(by_scheme["node_hours"], "min_credit")
        if base:
            for scheme in ("energy", "carbon"):
                used = _energy(by_scheme[scheme], "min_credit")
                ctx.log_metric(f"min_credit_energy_saving_{scheme}_vs_node_hours", 1 - used / base)
        ctx.log_metric("emulated", float(emulated))
        ctx.write_records("policies", rows)
        _plot(by_scheme, ctx.run_dir, emulated)

    def _profiles(self, ctx: RunContext) -> dict[str, dict[str, TaskProfile]]:
        published = published_profiles()
        if self.config.profiles == "published":
            return published
        watts = ctx.watts_per_thread or local_profile().watts_per_thread
        with ctx.progress.bar("measuring the functions here", None):
            runs = measure_here(self.config.measure, watts, ctx.seed)
        ctx.write_records(
            "measured_functions",
            [
                {
                    "function": r.function,
                    "wall_s": r.wall_s,
                    "cpu_s": r.cpu_s,
                    "dynamic_j": r.dynamic_j,
                    "watts_per_thread": watts,
                }
                for r in runs
            ],
        )
        for r in runs:
            ctx.log_metrics(
                {
                    f"measured.{r.function}.wall_s": r.wall_s,
                    f"measured.{r.function}.dynamic_j": r.dynamic_j,
                }
            )
        log.warning(
            "accounting: profiles=measured is an EMULATION: the functions ran on this machine "
            "(%.2f W per busy thread) and are scaled to the four endpoints by the published "
            "ratios to Desktop; none of it ran on those endpoints",
            watts,
        )
        return emulated_profiles(runs, published)


def _energy(results: list[PolicyResult], policy: str) -> float:
    """Energy per user of ``policy`` (0 where no user follows it)."""
    return next((r.energy_j / r.users for r in results if r.policy == policy), 0.0)


def _row(r: PolicyResult) -> dict[str, object]:
    return {
        "policy": r.policy,
        "users": r.users,
        "energy_j": r.energy_j,
        "carbon_g": r.carbon_g,
        "carbon_credits_g": r.carbon_credits_g,
        "charge_node_hours": r.node_hours,
        "charge_energy_j": r.charged_energy_j,
        "core_s": r.core_s,
        "makespan_s": r.makespan_s,
        "wait_s": r.wait_s,
        "tasks": {e: r.tasks[e] for e in ENDPOINT_ORDER},
    }


def _plot(by_scheme: dict[Scheme, list[PolicyResult]], out: Path, emulated: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (energy, tasks) = plt.subplots(1, 2, figsize=(11, 4.2))
    markers = {"node_hours": "s", "energy": "o", "carbon": "^"}
    for scheme, results in by_scheme.items():
        for r in results:
            energy.scatter(
                r.core_s / r.users,
                r.energy_j / r.users,
                marker=markers[scheme],
                s=50,
                label=f"{scheme}: {r.policy}",
            )
    if not emulated:  # the prototype's 80-task users; an emulation is on another scale
        for policy, (_, joules, _) in PROTOTYPE.items():
            energy.axhline(joules, color="grey", linestyle=":", linewidth=0.8)
            energy.annotate(f"prototype {policy}", (energy.get_xlim()[0], joules), fontsize=7)
    what = "EMULATED from local runs" if emulated else "published profiles"
    energy.set(
        xlabel="core-seconds per user (runtime)",
        ylabel="dynamic energy per user (J)",
        title=f"energy vs runtime per policy and scheme ({what})",
    )
    energy.legend(fontsize=7)
    everyone = [(scheme, r) for scheme, results in by_scheme.items() for r in results]
    labels = [f"{scheme}\n{r.policy}" for scheme, r in everyone]
    bottom = [0.0] * len(everyone)
    for endpoint in ENDPOINT_ORDER:
        counts = [r.tasks[endpoint] / r.users for _, r in everyone]
        tasks.bar(labels, counts, bottom=bottom, label=endpoint)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    tasks.set(ylabel="tasks per user", title="tasks per endpoint, per scheme and policy")
    tasks.tick_params(axis="x", labelsize=6)
    tasks.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "accounting.png", dpi=110)
    plt.close(fig)
