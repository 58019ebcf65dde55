"""Engine overhead: Loom's task path vs bare concurrent.futures, and the fixed cost of `loom run`.

Run:  python benchmarks/engine_overhead.py [--tasks 10000] [--rounds 5] [--sweep-jobs 20]
      [--no-startup]
Prints two tables and writes them to results/benchmarks/engine_overhead.{md,json}.

The start-up table times `loom run recipe=quickstart scenario.tasks=1 repeats=1 energy=none`
in a fresh folder: first ever (no MLflow store), cold (store exists, nothing running) and warm
(after `loom up`, with its warm spare waiting), each beside the floor: a script that
composes the same config with Hydra, validates it, runs one task on a thread and logs one
metric to the same MLflow store. Then a
sweep of one-task jobs under runner=processes, warm: its per-job cost beyond the first job.

On `thread` the task path does not create a Future per task (pool threads drain Loom's ready
queue), so it can beat the bare one-Future-per-task loop; on `process` a burst of tasks leaves
in batches (two submissions in flight per worker, each a share of what waits), so it pays one
round trip per batch, not per task; each attempt still stamps its own times and worker id.
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
from concurrent.futures import Executor, wait
from pathlib import Path

from tables import markdown  # benchmarks/ is the script's folder

from components.executor.process import ProcessExecutorConfig
from components.executor.thread import ThreadExecutorConfig
from components.runtime.taskpath import TaskPath
from components.scenarios.taps_workflows import noop

ROOT = Path(__file__).resolve().parents[1]


def bare(executor: Executor, tasks: int) -> float:
    start = time.perf_counter()
    futures = [executor.submit(noop) for _ in range(tasks)]
    wait(futures)
    return time.perf_counter() - start


def loom(executor: Executor, tasks: int) -> float:
    """Submit → all done through the task path, timestamps and worker ids included.

    Serialising the records to dicts happens after the timed window, as in a scenario, where
    it is output writing after the makespan has ended.
    """
    with TaskPath(executor) as path:  # type: ignore[arg-type]
        start = time.perf_counter()
        for _ in range(tasks):
            path.submit(noop)
        path.wait()
        elapsed = time.perf_counter() - start
    records = [t.record() for t in path.tasks]
    assert len(records) == tasks and all(r["success"] and r["worker"] for r in records)
    return elapsed


# Issue 40: the task path on a process pool within 5 % of bare futures (thread: no slower).
GOAL_RATIO = {"thread": 1.0, "process": 1.05}
GOALS = {name: f"≤ {ratio:g}" for name, ratio in GOAL_RATIO.items()}


def task_path_table(tasks: int, rounds: int) -> list[dict[str, object]]:
    rows = []
    configs = {
        "thread": ThreadExecutorConfig(max_workers=4),
        "process": ProcessExecutorConfig(max_workers=2),
    }
    for name, config in configs.items():
        with config.build() as executor:
            bare(executor, 200), loom(executor, 200)  # warm both paths (workers, imports)
            times: dict[str, list[float]] = {"bare": [], "loom": []}
            for _ in range(rounds):  # interleaved so drift hits both alike
                times["bare"].append(bare(executor, tasks))
                times["loom"].append(loom(executor, tasks))
        b, lo = statistics.median(times["bare"]), statistics.median(times["loom"])
        rows.append(
            {
                "executor": name,
                "tasks": tasks,
                "rounds": rounds,
                "bare_s": round(b, 4),
                "loom_s": round(lo, 4),
                "bare_us_per_task": round(b / tasks * 1e6, 2),
                "loom_us_per_task": round(lo / tasks * 1e6, 2),
                "ratio": round(lo / b, 3),
                "goal": GOALS[name],
                "met": "yes" if lo / b <= GOAL_RATIO[name] else "no",
            }
        )
    return rows


ONE_TASK = ["recipe=quickstart", "scenario.tasks=1", "repeats=1", "energy=none"]
# The floor: what any tool must do for the same run. Compose the same config with Hydra and
# validate it, run one task on a thread, log one metric to the same MLflow store.
FLOOR = """
import sys, time
from concurrent.futures import ThreadPoolExecutor
from framework.compose import Composer
config = Composer().compose(sys.argv[2:])
with ThreadPoolExecutor(1) as pool:
    pool.submit(sum, [1, 2]).result()
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("floor")
with mlflow.start_run():
    mlflow.log_metric("tasks_per_s", 1.0)
"""


def _wall(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=cwd)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def startup_table(workdir: Path, sweep_jobs: int) -> list[dict[str, object]]:
    """One-task runs: first ever, cold, warm (loom up), beside the floor; a sweep's per-job cost."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["LOOM_ROOT"] = str(ROOT)
    loom = [sys.executable, "-m", "framework"]
    store = f"sqlite:///{workdir / 'results' / 'mlflow.db'}"
    floor = [sys.executable, "-c", FLOOR]
    rows: list[dict[str, object]] = []

    def row(case: str, seconds: float, peer: str, peer_s: float, goal: str) -> None:
        rows.append(
            {
                "case": case,
                "wall_s": round(seconds, 2),
                "peer": peer,
                "peer_s": round(peer_s, 2),
                "ratio": round(seconds / peer_s, 2),
                "goal": goal,
            }
        )

    first = _wall([*loom, "run", *ONE_TASK], env, workdir)  # creates the MLflow store
    floor_cold = _wall([*floor, store, *ONE_TASK], env, workdir)
    cold = _wall([*loom, "run", *ONE_TASK], env, workdir)
    row("first ever run (no store yet)", first, "floor, store exists", floor_cold, "≤ 8 s")
    row("cold (store exists, no services)", cold, "floor, SQLite store", floor_cold, "≤ 6 s")
    _wall([*loom, "up"], env, workdir)
    try:
        services = json.loads((workdir / "results/services/services.json").read_text())
        server = services["mlflow"]["url"]
        spare = workdir / "results/services/spare.sock"

        def warm_run(args: list[str]) -> float:
            # As a person types commands seconds apart: the spare for the run is waiting.
            deadline = time.monotonic() + 120
            while not spare.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(2.0)  # and the last run's process has exited
            return _wall([*loom, "run", *args], env, workdir)

        warm_run(ONE_TASK)  # the services' first run warms them
        warm = statistics.median(warm_run(ONE_TASK) for _ in range(3))
        floor_warm = statistics.median(
            _wall([*floor, server, *ONE_TASK], env, workdir) for _ in range(3)
        )
        row(
            "warm (loom up), median of 3", warm, "floor, MLflow server", floor_warm, "≤ 3 s, ≤ 1.5×"
        )
        seeds = ",".join(str(i) for i in range(sweep_jobs))
        # Without the quickstart's plots: a job's own output is not the engine's overhead.
        sweep = [*ONE_TASK, "scenario.plots=false", "runner=processes", "runner.workers=2"]
        sweep.append(f"seed={seeds}")
        whole = warm_run(["-m", *sweep])
        per_job = (whole - warm) / (sweep_jobs - 1)
        rows.append(
            {
                "case": f"sweep of {sweep_jobs} one-task jobs (no plots), runner=processes, warm",
                "wall_s": round(whole, 2),
                "peer": "one warm job",
                "peer_s": round(warm, 2),
                "ratio": round(whole / warm, 2),
                "goal": f"per job {per_job:.2f} s (goal ≤ 0.3 s)",
            }
        )
    finally:
        _wall([*loom, "down"], env, workdir)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sweep-jobs", type=int, default=20)
    parser.add_argument(
        "--startup",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time `loom run` start-up and a sweep (--no-startup: the task path only)",
    )
    args = parser.parse_args()
    out_dir = ROOT / "results" / "benchmarks"
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "engine_overhead_work"

    path_rows = task_path_table(args.tasks, args.rounds) if args.tasks else []
    cost_rows = startup_table(work, args.sweep_jobs) if args.startup else []
    text = (
        f"## Task path: {args.tasks} no-op tasks, median of {args.rounds} rounds\n\n"
        + (markdown(path_rows) if path_rows else "(skipped: --tasks 0)")
        + "\n\n## Start-up: a one-task `loom run` beside the floor (process wall times)\n\n"
        + (markdown(cost_rows) if cost_rows else "(skipped: --no-startup)")
        + "\n"
    )
    print(text)
    (out_dir / "engine_overhead.md").write_text(text)
    (out_dir / "engine_overhead.json").write_text(
        json.dumps({"task_path": path_rows, "startup": cost_rows}, indent=2)
    )
    print(f"written: {out_dir / 'engine_overhead.md'}")


if __name__ == "__main__":
    main()
