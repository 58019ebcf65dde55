"""``loom run -j N``: a sweep's jobs shared among N worker processes.

Each worker is a ``loom run`` of the same command that keeps the jobs whose index falls in its
slice (``--slice k/N``), so every worker validates the same sweep and numbers jobs alike. Each
runs its own Prefect flow and records into the same MLflow experiment, so ``loom report`` sees
one sweep. Experiments whose trials are CPU-bound Python (the placement simulator) use as many
cores as workers this way; threads could not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from framework.config import ACCOUNTING_METRICS, RunConfig

SLICE_ENV = "LOOM_INVOCATION_FILE"


def parse_slice(text: str) -> tuple[int, int]:
    """``"k/N"`` → (k, N) with 0 ≤ k < N."""
    try:
        part, total = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--slice {text!r}: expected k/N, e.g. 0/2") from None
    if not 0 <= part < total:
        raise ValueError(f"--slice {text!r}: need 0 ≤ k < N")
    return part, total


def _warm_up(overrides: list[str]) -> None:
    """Create MLflow's and Prefect's local databases once, before workers share them.

    Two processes creating the same SQLite schema at once fail; afterwards they only add
    rows. It runs in a process of its own, so that it meets exactly the databases the
    workers will (not ones this process has cached).
    """
    code = "import sys, json; from framework.parallel import warm; warm(json.loads(sys.argv[1]))"
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(overrides)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"preparing the workers failed: {done.stderr.strip()[-400:]}")


def warm(overrides: list[str]) -> None:
    """Open the job's MLflow store and run an empty Prefect flow (both create their tables)."""
    from framework.compose import Composer
    from framework.engine import configure_prefect
    from framework.tracking import Tracker, quiet_mlflow

    config = Composer().compose(overrides)
    quiet_mlflow(False)
    Tracker(config.root.tracking, Path(config.root.results_dir)).experiment_id(config.recipe)
    configure_prefect(verbose=False)
    if os.environ.get("PREFECT_API_URL"):
        return  # a real server: nothing local to prepare
    from prefect import flow

    @flow(name="loom-warm-up", persist_result=False)
    def warm_up() -> None:
        return None

    warm_up()


def run_in_workers(
    argv: list[str],
    workers: int,
    config: RunConfig,
    overrides: list[str],
    console: Console,
    out: Console,
) -> int:
    """Run ``loom run <argv>`` as ``workers`` processes, each with a slice of the jobs.

    Args:
        argv: The command line after ``loom run``.
        workers: How many processes.
        config: The first job's config (its headline metrics).
        overrides: The first job's overrides (to prepare its MLflow store).
        console: Where progress and errors go.
        out: Where the summary goes.

    Returns:
        The worst exit status of the workers.

    """
    _warm_up(overrides)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="loom-workers-") as tmp:
        folder = Path(tmp)
        procs = []
        for part in range(workers):
            env = {**os.environ, SLICE_ENV: str(folder / f"{part}.txt")}
            log = (folder / f"{part}.log").open("w")
            command = [sys.executable, "-m", "framework", "run", "--slice", f"{part}/{workers}"]
            procs.append(
                (
                    subprocess.Popen(
                        [*command, *argv], stdout=log, stderr=subprocess.STDOUT, env=env
                    ),
                    log,
                )
            )
        console.print(f"loom: {workers} worker processes started", highlight=False)
        statuses = []
        for proc, log in procs:
            statuses.append(proc.wait())
            log.close()
        rows: list[dict[str, Any]] = []
        folders = []
        for part in range(workers):
            marker = folder / f"{part}.txt"
            if marker.is_file():
                run_dir = Path(marker.read_text().strip())
                folders.append(run_dir)
                sweep = run_dir / "sweep.json"
                if sweep.is_file():
                    rows += json.loads(sweep.read_text())
            if statuses[part] != 0:
                tail = (folder / f"{part}.log").read_text().strip().splitlines()[-15:]
                console.print(f"worker {part} exited {statuses[part]}:", highlight=False)
                console.print("\n".join(tail), highlight=False, markup=False)
    headline = list(config.scenario.headline_metrics)
    headline += [m for m in ACCOUNTING_METRICS if headline and m not in headline]
    _print_rows(rows, headline, out, time.perf_counter() - started)
    for run_dir in folders:
        out.print(f"Results: {run_dir}", highlight=False, soft_wrap=True)
    return max(statuses)


def _print_rows(
    rows: list[dict[str, Any]], headline: list[str], out: Console, seconds: float
) -> None:
    rows = sorted(rows, key=lambda r: int(r["job"]))
    names = sorted({k for r in rows for k in r.get("metrics", {}) if not k.endswith("_std")})
    shown = headline or names[:8]
    table = Table(title=f"sweep of {len(rows)} jobs in {seconds / 60:.1f} min")
    table.add_column("job")
    table.add_column("status")
    for name in shown:
        table.add_column(name, justify="right")
    shared = set.intersection(*(set(r["overrides"]) for r in rows)) if rows else set()
    for r in rows:
        label = " ".join(o for o in r["overrides"] if o not in shared) or str(r["job"])
        metrics = r.get("metrics", {})
        table.add_row(
            label, r["status"], *(f"{metrics[n]:.4g}" if n in metrics else "-" for n in shown)
        )
    out.print(table)
