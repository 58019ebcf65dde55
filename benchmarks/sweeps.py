"""Sweep runners (issue 18): wall time of a sweep under each runner, as a ratio to sequential.

Run:  python benchmarks/sweeps.py [--replay N] [--short-jobs N] [--workers P] [--only drex|short]
Prints the table and writes results/benchmarks/sweeps.{md,json}.

Two sweeps, each run by ``loom run`` in a fresh folder with its own MLflow store:
* ``drex/reliability_sweep`` narrowed to 2 placers x 5 targets: 10 CPU-bound jobs of like length;
* ``--short-jobs`` synthetic jobs of 20 no-op tasks (what a runner adds per job).

Runners: ``sequential``, ``processes`` and a local ``dask`` cluster with ``--workers`` workers,
and the same sweep on a Dask scheduler started here as a separate process with ``--workers``
``dask worker`` processes (the way a cluster is run). A figure is one wall time per runner
(the sweeps take minutes); per job is wall time / jobs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tables import publish  # benchmarks/ is the script's folder

from components.loopback import free_port
from framework.compose import Composer
from framework.tracking import job_runs

ROOT = Path(__file__).resolve().parent.parent
# Two placers whose jobs cost alike at every one of the recipe's five targets: 10 jobs of similar
# length (at MEVA x 60 under processes: 7.9-9.8 s each). greedy_least_used and random, used before,
# ran 8-22 s, and a worker sat idle while the longest job ran last; drex_sc alone takes 70 % of
# a sweep of all placers, and then bounds any runner's wall time.
PLACERS = "greedy_min_storage,utility_factor"
TARGETS = "0.9,0.99,0.999,0.9999,0.99999"


def sweeps(replay: int, short_jobs: int) -> dict[str, tuple[list[str], int]]:
    """Name -> (overrides, jobs)."""
    seeds = ",".join(str(s) for s in range(short_jobs))
    return {
        f"drex 2 placers x 5 targets, replay {replay}": (
            [
                "recipe=drex/reliability_sweep",
                f"placement={PLACERS}",
                f"scenario.reliability={TARGETS}",
                f"scenario.replay={replay}",
            ],
            len(PLACERS.split(",")) * len(TARGETS.split(",")),
        ),
        f"{short_jobs} short synthetic jobs": (
            [
                "scenario=synthetic",
                "scenario.tasks=20",
                "scenario.plots=false",
                f"scenario.seed={seeds}",
            ],
            short_jobs,
        ),
    }


@contextmanager
def dask_cluster(workers: int) -> Iterator[str]:
    """A scheduler and ``workers`` worker processes, each started as its own command."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--dashboard-address",
                ":0",
            ],
            **quiet,
        )
    ]  # type: ignore[call-overload]
    procs += [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                address,
                "--nthreads",
                "1",
                "--no-dashboard",
            ],
            cwd=ROOT,
            **quiet,
        )  # type: ignore[call-overload]
        for _ in range(workers)
    ]
    try:
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=60)
        yield address
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)


def job_seconds(tracking_uri: str, overrides: list[str]) -> list[float]:
    """How long each job of a sweep ran: its MLflow run's end less its start."""
    composer = Composer()
    recipe = composer.compose(composer.expand(overrides, multirun=True)[0]).recipe
    runs = job_runs(tracking_uri, recipe)
    return list((runs.end_time - runs.start_time).dt.total_seconds())


def run(overrides: list[str], runner: list[str]) -> tuple[float, list[float]]:
    """Wall seconds of one ``loom run -m`` in a fresh folder, and its jobs' (raises on failure)."""
    with tempfile.TemporaryDirectory(prefix="loom-sweeps-") as tmp:
        tracking_uri = f"sqlite:///{tmp}/mlflow.db"
        command = [
            sys.executable,
            "-m",
            "framework",
            "run",
            "-m",
            *overrides,
            *runner,
            f"results_dir={tmp}",
            f"tracking.uri={tracking_uri}",
        ]
        started = time.perf_counter()
        done = subprocess.run(
            command,
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "LOOM_ROOT": str(ROOT)},
        )
        wall = time.perf_counter() - started
        jobs = job_seconds(tracking_uri, overrides) if done.returncode == 0 else []
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(runner)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return wall, jobs


def main() -> None:
    """Every sweep under every runner; print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--replay", type=int, default=250, help="MEVA replays per drex job (the recipe's 250)"
    )
    parser.add_argument("--short-jobs", type=int, default=20, help="short synthetic jobs")
    parser.add_argument("--workers", type=int, default=2, help="workers of each parallel runner")
    parser.add_argument("--only", choices=("drex", "short"), help="run one of the two sweeps")
    args = parser.parse_args()
    p = args.workers
    tables: dict[str, list[dict[str, object]]] = {}
    with dask_cluster(p) as address:
        runners = {
            "sequential": ["runner=sequential"],
            f"processes ({p})": ["runner=processes", f"runner.workers={p}"],
            f"dask, local cluster ({p})": ["runner=dask", f"runner.workers={p}"],
            f"dask, scheduler + {p} workers": ["runner=dask", f"runner.address={address}"],
        }
        chosen = sweeps(args.replay, args.short_jobs)
        if args.only:
            chosen = {t: v for t, v in chosen.items() if args.only in t}
        for title, (overrides, jobs) in chosen.items():
            walls: dict[str, tuple[float, list[float]]] = {}
            for name, runner in runners.items():
                walls[name] = run(overrides, runner)
                print(f"{title}: {name}: {walls[name][0]:.1f} s", flush=True)
            base = walls["sequential"][0]
            tables[f"{title} ({jobs} jobs)"] = [
                {
                    "runner": name,
                    "wall s": f"{wall:.1f}",
                    "ratio to sequential": f"{wall / base:.2f}",
                    "per job s": f"{wall / jobs:.2f}",
                    "jobs ran s (sum; min-max)": f"{sum(ran):.0f}; {min(ran):.1f}-{max(ran):.1f}",
                }
                for name, (wall, ran) in walls.items()
            ]
    publish("sweeps" if not args.only else f"sweeps-{args.only}", tables)


if __name__ == "__main__":
    main()
