"""The placement study's tables and plot: our strategies beside the authors' published rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.base import FinishedJob
from components.endpoints import greenfaas
from components.endpoints.protocol import Endpoints, Executed, TaskPlacement


def _published_key(name: str) -> str:
    return name if name.startswith("single:") else name.split(":")[0]


def strategy_rows(
    results: dict[str, tuple[TaskPlacement, Executed, float]], own: str, endpoints: Endpoints
) -> list[dict[str, Any]]:
    """One row per strategy: T, E, EDP, ratio to the strategy's EDP, tasks per endpoint."""
    edp_own = results[own][1].edp_kj_s
    authors = not endpoints.live and {s.name for s in endpoints.sites} == set(greenfaas.ENDPOINTS)
    rows = []
    for name, (placement, executed, overhead) in results.items():
        row: dict[str, Any] = {
            "strategy": name,
            "this_job": name == own,
            "makespan_s": round(executed.makespan_s, 3),
            "endpoints_energy_kj": round(executed.energy_total_j / 1000, 4),
            "static_kj": round(executed.static_j / 1000, 4),
            "edp_kj_s": round(executed.edp_kj_s, 3),
            "edp_vs_this_job": round(executed.edp_kj_s / edp_own, 3) if edp_own else None,
            "scheduling_overhead_s": round(overhead, 5),
            "clusters": placement.clusters,
            "ordering": placement.ordering,
            "tasks_on": executed.tasks,
            "measured": list(executed.measured) or ["nothing: simulated from the profiles"],
            "emulated": list(executed.emulated),
        }
        published = greenfaas.PUBLISHED.get(_published_key(name)) if authors else None
        if published is not None:
            row["authors_makespan_s"], row["authors_energy_kj"] = published
            row["authors_edp_kj_s"] = round(published[0] * published[1], 1)
        rows.append(row)
    return rows


def plot(rows: list[dict[str, Any]], path: Path, live: bool) -> None:
    """EDP per strategy (ours, and the authors' where published) and energy against time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (bars, scatter) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = [r["strategy"] for r in rows]
    ours = [r["edp_kj_s"] for r in rows]
    x = range(len(rows))
    bars.bar(
        [i - 0.2 for i in x],
        ours,
        0.4,
        label="Loom (live)" if live else "Loom (simulated)",
        color="tab:blue",
    )
    bars.bar(
        [names.index(r["strategy"]) - 0.2 for r in rows if r["this_job"]],
        [r["edp_kj_s"] for r in rows if r["this_job"]],
        0.4,
        color="tab:green",
        label="this job's strategy",
    )
    theirs = [r.get("authors_edp_kj_s") for r in rows]
    if any(v is not None for v in theirs):
        shown = [i for i, v in enumerate(theirs) if v is not None]
        bars.bar(
            [i + 0.2 for i in shown],
            [theirs[i] for i in shown],
            0.4,
            label="authors (published)",
            color="tab:gray",
        )
    bars.set_xticks(list(x), names, rotation=40, ha="right", fontsize=8)
    bars.set_ylabel("EDP (kJ·s)")
    bars.set_yscale("log")
    bars.legend(fontsize=8)
    bars.set_title("energy-delay product per strategy")
    for r in rows:
        scatter.scatter(
            r["makespan_s"],
            r["endpoints_energy_kj"],
            color="tab:green" if r["this_job"] else "tab:blue",
        )
        scatter.annotate(r["strategy"], (r["makespan_s"], r["endpoints_energy_kj"]), fontsize=7)
    scatter.set_xlabel("makespan (s)")
    scatter.set_ylabel("energy (kJ)")
    scatter.set_title("energy against makespan")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def comparison(runs: list[FinishedJob]) -> tuple[str, list[dict[str, Any]]] | None:
    """Each job's strategy and α beside the authors' row for it."""
    rows = []
    for run in runs:
        kind = run.params.get("task_placement.kind", "?")
        alpha = run.params.get("task_placement.alpha")
        row: dict[str, Any] = {
            "strategy": kind if alpha is None else f"{kind} a={alpha}",
            "faithful": run.params.get("task_placement.faithful", "-"),
            "cold_start_s": run.params.get("endpoints.cold_start_s", "-"),
            "static_scale": run.params.get("endpoints.static_power_scale", "-"),
            "makespan_s": round(run.metrics.get("makespan_s", float("nan")), 1),
            "endpoints_energy_kj": round(run.metrics.get("endpoints_energy_kj", float("nan")), 2),
            "edp_ratio_vs_best_alternative": round(
                run.metrics.get("edp_ratio_vs_best_alternative", float("nan")), 3
            ),
            "tasks_on": " ".join(
                f"{k.split('.', 1)[1]}={int(v)}"
                for k, v in sorted(run.metrics.items())
                if k.startswith("tasks_on.") and not k.endswith("_std")
            ),
        }
        if kind == "cluster_mhra" and alpha is not None and float(alpha) in greenfaas.SENSITIVITY:
            t, e, desk, mid, fast = greenfaas.SENSITIVITY[float(alpha)]
            row |= {
                "authors_makespan_s": t,
                "authors_energy_kj": e,
                "authors_tasks_on": f"desktop={desk} midway={mid} faster={fast} theta=0",
            }
        rows.append(row)
    if not rows:
        return None
    return "energy-aware placement against the authors' published rows", rows
