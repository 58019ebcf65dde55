"""Energy metering: what it costs, and how it compares with codecarbon on the same workload.

Run:  python benchmarks/energy.py [--tasks 10000] [--rounds 5] [--burn-s 3]
      (codecarbon comes with `pip install -e '.[bench]'`)
Writes results/benchmarks/energy.{md,json}.

1. Metering overhead: a trial of ``--tasks`` no-op tasks on `thread` and `process`, metered by
   `energy=model` vs `energy=none` (medians of alternating rounds, and the spread of the
   per-round ratios, which on a 2-core VM is wider than the effect), as a ratio; and the fixed
   cost of a meter's start + stop per trial.
2. Against codecarbon 3.3 in process mode (CPU-load estimate: P = TDP × process-tree CPU
   share / CPUs): one CPU-bound workload (a child process and this one burning CPU) measured
   by both at once, with the same watts per thread (codecarbon's TDP set to W × CPUs). The
   ratio of their CPU energy estimates, and of their start-up costs. Neither is validated
   against a power meter here: this machine has no RAPL and no power sensor.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from tables import publish  # benchmarks/ is the script's folder

from components.energy.model import ModelEnergyConfig
from components.energy.protocol import NoMeter
from components.executor.process import ProcessExecutorConfig
from components.executor.thread import ThreadExecutorConfig
from components.runtime.taskpath import TaskPath
from components.scenarios.taps_workflows import noop

WATTS = 10.0
BURN = "import time\nend = time.process_time() + {s}\nwhile time.process_time() < end: pass\n"


def metered_trial(executor: Any, meter: Any, tasks: int) -> float:
    """Seconds of one trial: start the meter, run the tasks, stop it."""
    start = time.perf_counter()
    measurement = meter.start()
    with TaskPath(executor) as path:
        for _ in range(tasks):
            path.submit(noop)
        path.wait()
    measurement.stop()
    return time.perf_counter() - start


def overhead_rows(tasks: int, rounds: int) -> list[dict[str, object]]:
    model = ModelEnergyConfig().build()
    rows: list[dict[str, object]] = []
    for name, config in (
        ("thread", ThreadExecutorConfig(max_workers=4)),
        ("process", ProcessExecutorConfig(max_workers=2)),
    ):
        with config.build() as executor:
            metered_trial(executor, NoMeter(), tasks // 10)  # warm the pool
            none, modelled = [], []
            # A thread trial takes tens of ms: more rounds for a steady median. Alternate
            # which goes first, so drift and warm caches favour neither.
            for i in range(rounds * 5 if name == "thread" else rounds):
                pair = [(none, NoMeter()), (modelled, model)]
                for times, meter in pair if i % 2 == 0 else pair[::-1]:
                    times.append(metered_trial(executor, meter, tasks))
        a, b = statistics.median(none), statistics.median(modelled)
        # Each round's pair, run back to back: the spread says how much is noise.
        paired = sorted(m / n for n, m in zip(none, modelled, strict=True))
        q1, _, q3 = statistics.quantiles(paired, n=4)
        rows.append(
            {
                "executor": name,
                "tasks": tasks,
                "rounds": len(none),
                "energy=none s": round(a, 4),
                "energy=model s": round(b, 4),
                "ratio model/none (medians)": round(b / a, 3),
                "paired ratio median [q1, q3]": (
                    f"{statistics.median(paired):.3f} [{q1:.3f}, {q3:.3f}]"
                ),
                "goal": "≤ 1.02",
            }
        )
    return rows


def fixed_cost_rows(rounds: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    meter = ModelEnergyConfig().build()
    for children in (0, 4):
        procs = [
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            for _ in range(children)
        ]
        costs = []
        for _ in range(rounds * 4):
            start = time.perf_counter()
            meter.start().stop()
            costs.append(time.perf_counter() - start)
        for proc in procs:
            proc.kill()
            proc.wait()
        cost_ms = round(1000 * statistics.median(costs), 3)
        rows.append(
            {
                "meter": "energy=model",
                "child processes": children,
                "start + stop ms (median)": cost_ms,
            }
        )
    return rows


def codecarbon_rows(burn_s: float) -> list[dict[str, object]]:
    try:
        from codecarbon import OfflineEmissionsTracker
    except ImportError:
        return [{"skipped": "codecarbon is not installed: pip install -e '.[bench]'"}]
    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    cpus = os.cpu_count() or 1
    ours = ModelEnergyConfig(watts_per_thread=WATTS, idle_w=0.0).build()
    rows: list[dict[str, object]] = []
    for child_s in (0.0, burn_s):
        start = time.perf_counter()
        tracker = OfflineEmissionsTracker(
            country_iso_code="USA",
            tracking_mode="process",
            force_mode_cpu_load=True,
            force_cpu_power=WATTS * cpus,
            measure_power_secs=1,
            save_to_file=False,
            log_level="error",
        )
        tracker.start()
        codecarbon_ms = 1e3 * (time.perf_counter() - start)
        start = time.perf_counter()
        measurement = ours.start()
        loom_ms = 1e3 * (time.perf_counter() - start)
        child = subprocess.Popen([sys.executable, "-c", BURN.format(s=child_s)])
        exec(BURN.format(s=burn_s / 2))  # this process burns too
        child.wait()
        time.sleep(1.5)  # codecarbon samples every second: let it see the end
        reading = measurement.stop()
        tracker.stop()
        codecarbon_j = float(tracker.final_emissions_data.cpu_energy) * 3.6e6
        ratio = round(reading.joules / codecarbon_j, 3) if codecarbon_j else "-"
        rows.append(
            {
                "workload (CPU s)": f"self {burn_s / 2:g}"
                + (f" + child {child_s:g}" * bool(child_s)),
                "W per thread": WATTS,
                "CPU s counted by loom": round(reading.cpu_s, 3),
                "loom J": round(reading.joules, 2),
                "codecarbon CPU J": round(codecarbon_j, 2),
                "ratio loom/codecarbon": ratio,
                "start-up ms loom / codecarbon": f"{loom_ms:.2f} / {codecarbon_ms:.0f}",
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000, help="no-op tasks per trial")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    parser.add_argument("--burn-s", type=float, default=3.0, help="CPU seconds of the child")
    args = parser.parse_args()
    overhead = "1. metering overhead: no-op tasks per trial, energy=model vs none (medians)"
    peer = "2. loom's model vs codecarbon 3.3 process mode, same workload, same W per thread"
    publish(
        "energy",
        {
            overhead: overhead_rows(args.tasks, args.rounds),
            "1b. fixed cost of a meter per trial": fixed_cost_rows(args.rounds),
            peer: codecarbon_rows(args.burn_s),
        },
    )


if __name__ == "__main__":
    main()
