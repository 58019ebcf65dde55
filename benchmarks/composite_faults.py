"""The composite experiment under faults, over two carbon shapes: what survives, what it costs.

Run:  python benchmarks/composite_faults.py [--seeds 2] [--workers 2]
Runs `loom run -m recipe=composite/carbon_faults seed=<0..n-1>`, and again with
`faults.schedule=[]`, for each carbon shape — `shipped` (the hourly grid shapes of
data/carbon/) and `flat` (each grid at its weekly mean, so only choosing places can save, not
waiting for hours) — in a scratch folder.
Prints, per shape and with or without the recipe's faults (a German container lost for good,
a worker of the German pool killed, the broker restarted), the mean over the seeds of the
final accuracy, the operational carbon and the shares of it spent on the links and on the
fabric's containers, the rounds completed, the events, keys and chunks lost, the plan waits
and the makespan; then the accuracy gap that the faults cost on the same seed (the issue's
goal: within one point), beside the peer: the same run without faults. Written to
results/benchmarks/composite_faults.{md,json}.
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

from composite_schedules import interval  # benchmarks/ is the script's folder
from tables import RESULTS, publish

from components.energy.carbon_series import CarbonSeries
from components.sites import GRIDS_DIR

ROOT = Path(__file__).resolve().parents[1]
SITES = {"cloud": "fr", "de": "de", "gb": "gb", "fr": "fr", "pl": "pl"}  # the recipe's grids
METRICS = (
    "final_accuracy",
    "carbon_total_g",
    "comm_carbon_share",
    "storage_carbon_share",
    "rounds_run",
    "events_lost",
    "store_keys_leaked",
    "data_fabric_chunks_unrepaired",
    "faults_injected",
    "plan_wait_ms_p50",
    "makespan_s",
)


def flat_overrides() -> list[str]:
    """Each site's grid at its series' mean: the same place ranking every hour."""
    overrides = []
    for site, grid in SITES.items():
        series = CarbonSeries.read(GRIDS_DIR / f"{grid}.csv")
        mean = series.mean(series.times[0], series.times[-1])
        overrides.append(f"sites.{site}.carbon={mean:.1f}")
    return overrides


def run_shape(
    work: Path, shape: str, seeds: int, workers: int
) -> dict[str, list[dict[str, float]]]:
    """Every seed with the recipe's faults and without: each job's metrics, by which."""
    by_faults: dict[str, list[dict[str, float]]] = {}
    for faults, extra in (("schedule", []), ("none", ["faults.schedule=[]"])):
        folder = work / shape / faults
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        env = {**os.environ, "LOOM_ROOT": str(ROOT), "LOOM_NO_SPARE": "1"}
        argv = [sys.executable, "-m", "framework", "run", "-m", "recipe=composite/carbon_faults"]
        argv += [f"seed={','.join(map(str, range(seeds)))}", "energy=none", *extra]
        argv += ["runner=processes", f"runner.workers={workers}"]
        argv += flat_overrides() if shape == "flat" else []
        subprocess.run(argv, cwd=folder, env=env, check=True)
        sweep = next((folder / "results" / "composite" / "carbon_faults").glob("*/sweep.json"))
        jobs = sorted(json.loads(sweep.read_text()), key=lambda j: j["overrides"])
        by_faults[faults] = [
            json.loads((Path(j["run_dir"]) / "trial-000" / "metrics.json").read_text())
            for j in jobs
        ]
    return by_faults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    began = time.perf_counter()
    rows: list[dict[str, object]] = []
    gaps: list[dict[str, object]] = []
    for shape in ("shipped", "flat"):
        runs = run_shape(RESULTS / "composite_faults_work", shape, args.seeds, args.workers)
        for option, metrics in runs.items():
            row: dict[str, object] = {"shape": shape, "faults": option, "seeds": len(metrics)}
            for name in METRICS:
                values = [float(m.get(name, 0.0)) for m in metrics]
                mean, half = interval(values)
                spread = "" if half != half or half == 0 else f" ± {half:.2g}"  # nan: one seed
                row[name] = f"{mean:.4g}{spread}"
            rows.append(row)
        paired = [  # the same seed with and without faults
            100 * (calm["final_accuracy"] - hit["final_accuracy"])
            for hit, calm in zip(runs["schedule"], runs["none"], strict=True)
        ]
        lost = sum(
            m.get(k, 0.0)
            for m in runs["schedule"]
            for k in ("events_lost", "store_keys_leaked", "data_fabric_chunks_unrepaired")
        )
        rounds = all(m["rounds_run"] == runs["none"][0]["rounds_run"] for m in runs["schedule"])
        gaps.append(
            {
                "shape": shape,
                "accuracy cost of the faults (points, same seed)": (
                    f"{statistics.fmean(paired):.2f} (worst {max(paired):.2f})"
                ),
                "every round completed": "yes" if rounds else "no",
                "events, keys and chunks lost": f"{lost:g}",
                "goal": "within 1 point; nothing lost",
            }
        )
    minutes = (time.perf_counter() - began) / 60
    publish(
        "composite_faults",
        {
            f"With and without faults, {args.seeds} seeds (mean ± 95 % interval; "
            f"{minutes:.1f} min in all)": rows,
            "Against the goals (issue 39)": gaps,
        },
    )


if __name__ == "__main__":
    main()
