"""Faults survived: each area's faults recipe beside the same run without faults.

Run:  python benchmarks/faults.py [--only storage,taps]
Prints a table and writes it to results/benchmarks/faults.{md,json}.

Each row runs a recipe of ``recipes/faults/`` as a job (its trial timed), then the same config
with ``faults.schedule=[]``: the peer is the run without faults; the slowdown is the ratio of
two trials' wall times. The invariant is the area's: every acknowledged object read back,
every event consumed, every round and evaluation done, the result verified, nothing leaked.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tables import markdown, publish  # benchmarks/ is the script's folder

from framework.compose import Composer
from framework.job import Job, JobPlan, JobRunner

Metrics = Mapping[str, float]
# recipe → (area, the invariant as text, the check on the faulty trial and the clean one)
CASES: dict[str, tuple[str, str, Callable[[Metrics, Metrics], bool]]] = {
    "faults/storage": (
        "storage fabric",
        "objects_lost = 0",
        lambda m, c: m.get("objects_lost", 1) == 0,
    ),
    "faults/taps": (
        "task path (process pool)",
        "result_verified, tasks_failed = 0",
        lambda m, c: m.get("result_verified") == 1 and m.get("tasks_failed") == 0,
    ),
    "faults/fl_over_fabric": (
        "FL over the fabric",
        "all rounds, no task failed, no key leaked, accuracy as without faults",
        lambda m, c: (
            m.get("rounds_run") == c.get("rounds_run")
            and m.get("tasks_failed") == 0
            and m.get("store_keys_leaked") == 0
            and m.get("final_accuracy") == c.get("final_accuracy")
        ),
    ),
    "faults/steering_fabric_queues": (
        "steering on fabric queues",
        "the campaign finished",
        lambda m, c: bool(m),
    ),
    "faults/events": (
        "event fabric (tansu, S3)",
        "events_lost = 0",
        lambda m, c: m.get("events_lost", 1) == 0,
    ),
}


class _NoTracker:
    """Records nothing: the benchmark reads each trial's metrics.json."""

    def start_run(self, *args: Any, **kwargs: Any) -> str:
        return "run"

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


def _trial(recipe: str, *overrides: str) -> tuple[dict[str, float], float, str]:
    """The job's first trial: its metrics, its wall seconds and its error line (or '')."""
    config = Composer().compose([f"recipe={recipe}", "energy=none", *overrides])
    folder = Path(tempfile.mkdtemp(prefix="loom-faults-bench-"))
    took: list[float] = []

    def stage(name: str, run_name: str, fn: Any, **options: Any) -> Any:
        def timed(*args: Any) -> Any:
            began = time.perf_counter()
            try:
                return fn(*args)
            finally:
                if name == "trial":
                    took.append(time.perf_counter() - began)

        return timed

    plan = JobPlan(Job(0, list(overrides), config), folder, "bench", None, {}, {})
    result = JobRunner(plan, _NoTracker(), stage=stage).run()  # type: ignore[arg-type]
    path = folder / "trial-000" / "metrics.json"
    metrics = json.loads(path.read_text()) if path.exists() else {}
    return metrics, (took[0] if took else float("nan")), result.error.line if result.error else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated recipe names (storage,taps)")
    args = parser.parse_args()
    chosen = {f"faults/{n}" for n in args.only.split(",") if n} or set(CASES)
    rows: list[dict[str, object]] = []
    for recipe, (area, invariant, holds) in CASES.items():
        if recipe not in chosen:
            continue
        faulty, faulty_s, error = _trial(recipe)
        clean, clean_s, _ = _trial(recipe, "faults.schedule=[]")
        rows.append(
            {
                "area": area,
                "recipe": recipe,
                "faults injected": int(faulty.get("faults_injected", 0)),
                "invariant": invariant,
                "held": "yes" if not error and holds(faulty, clean) else f"no {error}".strip(),
                "recover s (max)": round(faulty.get("fault_recover_s_max", 0.0), 3),
                "trial s, faults": round(faulty_s, 2),
                "trial s, none": round(clean_s, 2),
                "slowdown": round(faulty_s / clean_s, 2) if clean_s > 0 else float("nan"),
                "detail": ", ".join(
                    f"{k}={faulty[k]:g}"
                    for k in (
                        "events_lost",
                        "events_duplicated",
                        "objects_lost",
                        "put_failures",
                        "degraded_reads",
                        "tasks_retried",
                        "task_attempts_lost_with_worker",
                        "data_fabric_containers_down",
                        "data_orphans_evicted",
                        "store_keys_leaked",
                    )
                    if k in faulty
                ),
            }
        )
        print(markdown(rows[-1:]), flush=True)
    publish("faults", {"Faults survived (peer: the same run with faults.schedule=[])": rows})


if __name__ == "__main__":
    main()
