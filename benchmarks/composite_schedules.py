"""Carbon-steered FL over sites: every participation schedule against Flight's fixed one.

Run:  python benchmarks/composite_schedules.py [--seeds 5] [--workers 2]
Runs `loom run -m recipe=composite/carbon_schedules scenario.policy=<all> seed=<0..n-1>` in a
scratch folder (rounds back to back, the recipe's default), and `carbon_aware` and `oracle`
again allowed to wait for cleaner hours (`+wait`, `scenario.defer_budget=0.2`), then prints,
per schedule, the mean and 95 % interval (t distribution) over the seeds of the final
accuracy, the operational carbon, the carbon and hours to the target accuracy, and the carbon
saved against `fixed` (the peer: Flight's default, every device every round), beside the
issue's goals: at least 40 % less carbon within one point of accuracy and at most 1.2 x the
hours to the target; the agent at least 5 points of saving above the threshold rule, and at
least 90 % of the saving of the oracle that knows the future and may wait (`oracle+wait`).
Written to results/benchmarks/composite_schedules.{md,json}, with composite_schedules.png:
accuracy against carbon spent, every schedule, seed 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from scipy import stats
from tables import RESULTS, publish  # benchmarks/ is the script's folder

ROOT = Path(__file__).resolve().parents[1]
BACK_TO_BACK = ("fixed", "random", "threshold", "carbon_aware")
WAITING = ("carbon_aware", "oracle")
WAIT_BUDGET = 0.2
POLICIES = (*BACK_TO_BACK, *(f"{p}+wait" for p in WAITING))
METRICS = ("final_accuracy", "carbon_total_g", "carbon_to_target_g", "hours_to_target", "hours")


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % interval."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan")
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return mean, float(half)


def run_sweep(
    work: Path, seeds: int, workers: int
) -> tuple[dict[str, list[dict[str, float]]], dict[str, list[dict[str, float]]]]:
    """Run every schedule on every seed; each job's metrics and seed 0's rounds, by schedule.

    The recipe's schedules run back to back (``defer_budget: 0``); ``carbon_aware`` and
    ``oracle`` run again allowed to wait for cleaner hours (``+wait``: 0.2 hours a round).
    """
    shutil.rmtree(work, ignore_errors=True)
    env = {**os.environ, "LOOM_ROOT": str(ROOT), "LOOM_NO_SPARE": "1"}
    by_policy: dict[str, list[dict[str, float]]] = {p: [] for p in POLICIES}
    first_rounds: dict[str, list[dict[str, float]]] = {}
    for suffix, policies, extra in (
        ("", BACK_TO_BACK, []),
        ("+wait", WAITING, [f"scenario.defer_budget={WAIT_BUDGET}"]),
    ):
        folder = work / (suffix.strip("+") or "back_to_back")
        folder.mkdir(parents=True)
        argv = [sys.executable, "-m", "framework", "run", "-m"]
        argv += ["recipe=composite/carbon_schedules", f"scenario.policy={','.join(policies)}"]
        argv += [f"seed={','.join(map(str, range(seeds)))}", *extra]
        argv += ["energy=none", "runner=processes", f"runner.workers={workers}"]
        subprocess.run(argv, cwd=folder, env=env, check=True)
        sweep = next((folder / "results" / "composite" / "carbon_schedules").glob("*/sweep.json"))
        jobs = sorted(json.loads(sweep.read_text()), key=lambda j: j["job"])
        for job in jobs:
            policy = next(o.split("=", 1)[1] for o in job["overrides"] if "policy=" in o)
            trial = Path(job["run_dir"]) / "trial-000"
            by_policy[policy + suffix].append(json.loads((trial / "metrics.json").read_text()))
            if "seed=0" in job["overrides"]:
                lines = (trial / "rounds.jsonl").read_text().splitlines()
                first_rounds[policy + suffix] = [json.loads(line) for line in lines]
    return by_policy, first_rounds


def plot(first_rounds: dict[str, list[dict[str, float]]], path: Path) -> None:
    """Accuracy against the carbon spent so far, one line per schedule."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for policy, rounds in first_rounds.items():
        spent, xs = 0.0, []
        for r in rounds:
            spent += r["carbon_training_g"] + r["carbon_comm_g"] + r.get("carbon_storage_g", 0.0)
            xs.append(spent * 1000)
        ax.plot(xs, [r["accuracy"] for r in rounds], marker=".", label=policy)
    ax.set_xlabel("operational carbon so far (mg CO2e)")
    ax.set_ylabel("test accuracy")
    ax.set_title("composite/carbon_schedules, seed 0: accuracy against carbon")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    began = time.perf_counter()
    runs, first_rounds = run_sweep(RESULTS / "composite_schedules_work", args.seeds, args.workers)
    elapsed = time.perf_counter() - began
    plot(first_rounds, RESULTS / "composite_schedules.png")

    fixed_carbon = [m["carbon_total_g"] for m in runs["fixed"]]
    rows = []
    saved: dict[str, list[float]] = {}
    for policy, metrics in runs.items():
        row: dict[str, object] = {"schedule": policy, "seeds": len(metrics)}
        for name in METRICS:
            values = [m[name] for m in metrics if name in m]
            if len(values) < len(metrics):
                row[name] = f"reached in {len(values)}/{len(metrics)}"
                continue
            mean, half = interval(values)
            row[name] = f"{mean:.4g} ± {half:.2g}"
        # Saving against fixed on the same seed (paired).
        saved[policy] = [
            100 * (1 - m["carbon_total_g"] / f) for m, f in zip(metrics, fixed_carbon, strict=True)
        ]
        mean, half = interval(saved[policy])
        row["carbon_saved_pct"] = f"{mean:.1f} ± {half:.1f}"
        rows.append(row)

    def mean_of(policy: str, name: str) -> float:
        return statistics.fmean(m[name] for m in runs[policy] if name in m)

    agent = statistics.fmean(saved["carbon_aware"])
    oracle = statistics.fmean(saved["oracle+wait"])
    gap = 100 * (mean_of("fixed", "final_accuracy") - mean_of("carbon_aware", "final_accuracy"))
    hours = mean_of("carbon_aware", "hours_to_target") / mean_of("fixed", "hours_to_target")
    threshold = statistics.fmean(saved["threshold"])
    goals: list[dict[str, object]] = [
        {"goal": "carbon saved vs fixed ≥ 40 %", "measured": f"{agent:.1f} %"},
        {"goal": "accuracy within 1 point of fixed", "measured": f"{gap:.2f} points below"},
        {"goal": "hours to target ≤ 1.2 × fixed", "measured": f"{hours:.2f} ×"},
        {"goal": "≥ 5 points more saving than threshold", "measured": f"{agent - threshold:.1f}"},
        {"goal": "≥ 90 % of the oracle's saving", "measured": f"{100 * agent / oracle:.0f} %"},
        {"goal": "whole comparison < 10 min", "measured": f"{elapsed / 60:.1f} min"},
    ]
    publish(
        "composite_schedules",
        {
            f"Schedules over {args.seeds} seeds (mean ± 95 % interval)": rows,
            "Against the goals (issue 39)": goals,
        },
    )


if __name__ == "__main__":
    main()
