"""Engine overhead: Loom's task path vs bare concurrent.futures, and the fixed cost of `loom run`.

Run:  python benchmarks/engine_overhead.py [--tasks 10000] [--rounds 5]
Prints two tables and writes them to results/benchmarks/engine_overhead.{md,json}.

On `thread` the task path does not create a Future per task (pool threads drain Loom's ready
queue), so it can beat the bare one-Future-per-task loop; on `process` every attempt is one pool
submission, wrapped to stamp times and the worker id.
"""

from __future__ import annotations

import argparse
import json
import os
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
            }
        )
    return rows


def fixed_cost_table(workdir: Path) -> list[dict[str, object]]:
    """Time one tiny `loom run` in a fresh process, twice (cold and warm Prefect DB)."""
    rows = []
    env = {**os.environ, "LOOM_ROOT": str(ROOT)}
    probe = "import time; t=time.perf_counter(); import {m}; print(time.perf_counter()-t)"
    for module in ("framework.cli", "prefect", "mlflow"):
        out = subprocess.run(
            [sys.executable, "-c", probe.format(m=module)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=workdir,
        )
        rows.append({"part": f"import {module}", "seconds": round(float(out.stdout), 3)})
    for label in ("first loom run (Prefect DB as found)", "second loom run"):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "framework", "run", "scenario.tasks=1", "scenario.plots=false"],
            env=env,
            capture_output=True,
            check=True,
            cwd=workdir,
        )
        wall = time.perf_counter() - start
        runs = sorted(workdir.glob("results/default/*/timings.json"))
        timings = json.loads(runs[-1].read_text())
        rows.append({"part": f"{label}: process wall", "seconds": round(wall, 3)})
        for key, value in timings.items():
            rows.append({"part": f"{label}: {key}", "seconds": round(value, 3)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    out_dir = ROOT / "results" / "benchmarks"
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "engine_overhead_work"
    work.mkdir(exist_ok=True)

    path_rows = task_path_table(args.tasks, args.rounds)
    cost_rows = fixed_cost_table(work)
    text = (
        f"## Task path: {args.tasks} no-op tasks, median of {args.rounds} rounds "
        "(goal: ratio ≤ 1.10)\n\n"
        + markdown(path_rows)
        + "\n\n## Fixed cost of one `loom run` (1 task)\n\n"
        + markdown(cost_rows)
        + "\n"
    )
    print(text)
    (out_dir / "engine_overhead.md").write_text(text)
    (out_dir / "engine_overhead.json").write_text(
        json.dumps({"task_path": path_rows, "fixed_cost": cost_rows}, indent=2)
    )
    print(f"written: {out_dir / 'engine_overhead.md'}")


if __name__ == "__main__":
    main()
