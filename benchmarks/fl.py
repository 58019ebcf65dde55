"""Federated learning: Loom's Flight runtime against Flower 1.42's simulation, side by side.

Run:  python benchmarks/fl.py [--devices 2,128,2048,10000] [--flower-devices 2,128,2048]
                              [--rounds 4] [--flower-timeout 900]
      (the first run makes .venv-flower: Flower pins a FastAPI that Prefect cannot use, so the
      peer gets its own environment, with the same torch CPU wheel; --setup-only just makes it)
Writes results/benchmarks/fl.{md,json}.

Both sides train the same 64-32-10 MLP with the same local SGD (one epoch, batch 32,
lr 0.1) on the same split (``make_classification``, 20,000 samples, Flight's two-Dirichlet
split) with the same per-client seeds, FedAvg over a two-tier star, every device every round.
Each side runs as its own process tree on the 2 cores:

- ``loom-thread`` and ``loom-process``: ``components.fl`` on a 2-worker executor, devices
  vmapped 256 to a task (the fast path), models by value through the task path;
- ``flower``: ``flwr.simulation.run_simulation`` on Ray, one CPU per client actor (2 actors);
- ``loop``: one process training the clients one by one, then averaging (the floor any
  runtime adds to).

Figures, defined alike on every side: a round runs from the dispatch of the global model to
the aggregated model at the server; round 1 also starts Flower's actors, so the per-round
figure is the mean of rounds 2 … R and round 1 is shown apart; start-up is process start to
the first dispatch; peak memory is the largest sum of PSS (shared pages split between their
users) over the whole process tree, sampled every 0.25 s; accuracy is the final global model's
on the central test set. A side that runs past ``--flower-timeout`` or fails is recorded as
such, not as a number.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from tables import publish  # benchmarks/ is the script's folder

STARTED = time.perf_counter()
ROOT = Path(__file__).resolve().parent.parent
FLOWER_ENV = ROOT / ".venv-flower"
FLOWER_PACKAGES = ["torch==2.13.0", "scikit-learn>=1.4", "flwr[simulation]==1.42.0"]
SEED = 0
GOAL_SPEEDUP = 100  # Flower's round time over Loom's, at 2,048 devices (issue 40)
GOAL_MEMORY = 0.25  # Loom's peak PSS over Flower's, same


def settings(devices: int, rounds: int) -> dict[str, Any]:
    """The experiment both sides run (plain JSON, so the Flower side needs no Loom config)."""
    return {
        "devices": devices,
        "rounds": rounds,
        "seed": SEED,
        "data": {
            "dataset": "synthetic",
            "samples": 20_000,
            "seed": SEED,
            "workers": devices,
            "samples_alpha": 100.0,
            "labels_alpha": 1.0,
        },
        "model": {"name": "mlp", "features": 64, "classes": 10, "hidden": 32},
        "local": {"epochs": 1, "batch_size": 32, "lr": 0.1, "mu": 0.0},
    }


# -- the sides, each run as its own process -------------------------------------------------


def loom_side(cfg: dict[str, Any], out_path: str, executor: str) -> None:
    """Loom's runtime: the fl component's federation on a process (or thread) executor."""
    import pickle

    import torch

    from components.executor.process import ProcessExecutorConfig
    from components.executor.thread import ThreadExecutorConfig
    from components.fl import jobs
    from components.fl.data import load
    from components.fl.federation import Federation
    from components.fl.flight import FlightConfig, FlightFL
    from components.fl.strategies import Update
    from components.fl.topology import TwoTier
    from components.fl.training import evaluate, initial_params
    from components.runtime.taskpath import TaskPath

    fl = FlightFL(
        FlightConfig(
            topology=TwoTier(workers=cfg["devices"]),
            rounds=cfg["rounds"],
            data={
                k: cfg["data"][k] for k in ("dataset", "samples", "samples_alpha", "labels_alpha")
            },
            model={"name": "mlp", "hidden": cfg["model"]["hidden"]},
            local={k: cfg["local"][k] for k in ("epochs", "batch_size", "lr")},
        )
    )
    data = load(cfg["data"]["dataset"], cfg["seed"], cfg["data"]["samples"])
    plan = fl.plan(cfg["seed"], data.features, data.classes)
    net = jobs.model_of(plan.model)
    start = Update(initial_params(net, cfg["seed"]), 0)
    x_test, y_test = torch.as_tensor(data.x_test), torch.as_tensor(data.y_test)
    pool = (
        ProcessExecutorConfig(max_workers=2)
        if executor == "process"
        else ThreadExecutorConfig(max_workers=2)
    ).build()
    with pool, TaskPath(pool) as path:
        for _ in range(2):
            path.submit(jobs.prime, plan.data, plan.model)
        path.wait()
        federation = Federation(plan, path, lambda u: evaluate(net, u.state, x_test, y_test))
        dispatched = time.perf_counter()
        final = federation.run_sync(start, len(pickle.dumps(start, protocol=5)))
    accuracy, loss = evaluate(net, final.state, x_test, y_test)
    record = {
        "round_s": [h["round_s"] for h in federation.history],
        "accuracy": accuracy,
        "loss": loss,
        "startup_s": dispatched - STARTED,
    }
    Path(out_path).write_text(json.dumps(record))


def loop_side(cfg: dict[str, Any], out_path: str) -> None:
    """The floor: one process, clients trained one after another, then FedAvg."""
    import torch

    from components.fl import jobs
    from components.fl.data import load
    from components.fl.federation import hash_seed
    from components.fl.strategies import FedAvg, Update
    from components.fl.training import LocalTraining, evaluate, initial_params, train_one

    torch.set_num_threads(1)
    data_spec = jobs.DataSpec(**cfg["data"])
    model_spec = jobs.ModelSpec(**cfg["model"])
    local = LocalTraining(**cfg["local"])
    x, y, parts = jobs.federation_data(data_spec)
    net = jobs.model_of(model_spec)
    current = Update(initial_params(net, cfg["seed"]), 0)
    test = load(cfg["data"]["dataset"], cfg["seed"], cfg["data"]["samples"])
    rounds_s = []
    startup = time.perf_counter() - STARTED
    for round_ in range(cfg["rounds"]):
        began = time.perf_counter()
        updates = []
        for worker, part in enumerate(parts):
            index = torch.as_tensor(part)
            state = train_one(
                net,
                current.state,
                x[index],
                y[index],
                local,
                hash_seed(cfg["seed"], round_, worker),
            )
            updates.append(Update(state, len(part)))
        current = FedAvg().aggregate(updates)
        rounds_s.append(time.perf_counter() - began)
    accuracy, loss = evaluate(
        net, current.state, torch.as_tensor(test.x_test), torch.as_tensor(test.y_test)
    )
    Path(out_path).write_text(
        json.dumps({"round_s": rounds_s, "accuracy": accuracy, "loss": loss, "startup_s": startup})
    )


# -- the driver -----------------------------------------------------------------------------


def tree_memory(root: psutil.Process) -> tuple[float, float]:
    """(PSS, RSS) in MB summed over ``root`` and all its descendants."""
    pss = rss = 0.0
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0, 0.0
    for proc in procs:
        try:
            info = proc.memory_full_info()
        except psutil.Error:
            continue
        pss += getattr(info, "pss", info.rss) / 2**20
        rss += info.rss / 2**20
    return pss, rss


def measured(command: list[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Run one side; its JSON record plus peak tree memory, or what stopped it."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "record.json"
        log = Path(tmp) / "log.txt"
        began = time.perf_counter()
        with log.open("w") as sink:
            proc = subprocess.Popen(
                [*command, str(out)],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        peak = [0.0, 0.0]
        done = threading.Event()

        def sample() -> None:
            root = psutil.Process(proc.pid)
            while not done.wait(0.25):
                pss, rss = tree_memory(root)
                peak[0], peak[1] = max(peak[0], pss), max(peak[1], rss)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            rc: int | str = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = f"timed out after {timeout:.0f} s"
        finally:
            done.set()
            sampler.join()
            kill_tree(proc.pid)
        wall = time.perf_counter() - began
        if rc != 0 or not out.exists():
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            oom = any("MemoryError" in line or "OutOfMemory" in line for line in tail)
            reason = rc if isinstance(rc, str) else f"exit {rc}"
            reason += " (out of memory)" if oom else ""
            partial = Path(f"{out}.partial")
            done_rounds = json.loads(partial.read_text())["round_s"] if partial.exists() else []
            reason += f"; {len(done_rounds)} rounds done" + "".join(
                f", round {i + 1}: {s:.0f} s" for i, s in enumerate(done_rounds)
            )
            return {
                "failed": reason,
                "detail": " / ".join(tail)[-300:],
                "wall_s": wall,
                "peak_pss_mb": peak[0],
                "peak_rss_mb": peak[1],
            }
        record = json.loads(out.read_text())
        record.update(wall_s=wall, peak_pss_mb=peak[0], peak_rss_mb=peak[1])
        return record


def kill_tree(pid: int) -> None:
    """End a side and everything it started (Ray leaves daemons behind otherwise)."""
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        procs = []
    with contextlib.suppress(OSError):
        os.killpg(pid, 9)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()


def ensure_flower_env() -> Path:
    """``.venv-flower`` with Flower, Ray, torch (CPU) and scikit-learn; its python."""
    python = FLOWER_ENV / "bin" / "python"
    probe = [str(python), "-c", "import flwr, ray, torch, sklearn"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"making {FLOWER_ENV} (Flower 1.42, Ray, torch 2.13 CPU) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(FLOWER_ENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *FLOWER_PACKAGES], check=True)
    return python


def summary(side: str, devices: int, record: dict[str, Any]) -> dict[str, object]:
    """One table row."""
    row: dict[str, object] = {"side": side, "devices": devices}
    if "failed" in record:
        row.update(
            round_s="—",
            round1_s="—",
            startup_s="—",
            accuracy="—",
            peak_pss_mb=f"{record['peak_pss_mb']:.0f}",
            status=record["failed"],
        )
        return row
    steady = record["round_s"][1:] or record["round_s"]
    row.update(
        round_s=round(sum(steady) / len(steady), 3),
        round1_s=round(record["round_s"][0], 2),
        startup_s=round(record["startup_s"], 2),
        accuracy=round(record["accuracy"], 4),
        peak_pss_mb=f"{record['peak_pss_mb']:.0f}",
        status="ok",
    )
    return row


def ratios(rows: list[dict[str, object]], compared: str) -> list[dict[str, object]]:
    """Flower / Loom (side ``compared``) per device count where both ran."""
    out: list[dict[str, object]] = []
    by = {(r["side"], r["devices"]): r for r in rows}
    for (side, devices), loom in by.items():
        flower = by.get(("flower", devices))
        if side != compared or flower is None:
            continue
        if flower["status"] != "ok" or loom["status"] != "ok":
            out.append(
                {
                    "devices": devices,
                    "round_time_flower_over_loom": "—",
                    "accuracy_points_loom_minus_flower": "—",
                    "memory_loom_over_flower": "—",
                    "goals_met": "—",
                    "note": f"flower: {flower['status']}, loom: {loom['status']}",
                }
            )
            continue

        def num(row: dict[str, object], key: str) -> float:
            return float(str(row[key]))

        speed = num(flower, "round_s") / num(loom, "round_s")
        points = 100 * (num(loom, "accuracy") - num(flower, "accuracy"))
        memory = num(loom, "peak_pss_mb") / num(flower, "peak_pss_mb")
        met = speed >= GOAL_SPEEDUP and abs(points) <= 1 and memory <= GOAL_MEMORY
        out.append(
            {
                "devices": devices,
                "round_time_flower_over_loom": round(speed, 1),
                "accuracy_points_loom_minus_flower": round(points, 2),
                "memory_loom_over_flower": round(memory, 2),
                "goals_met": ("yes" if met else "no") if devices == 2048 else "—",
                "note": compared,
            }
        )
    return out


def main() -> None:
    """Run every side at every size; print and write the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="2,128,2048,10000", help="Loom and loop sizes")
    parser.add_argument("--flower-devices", default="2,128,2048,10000", help="Flower sizes")
    parser.add_argument("--loop-devices", default="2,128,2048", help="plain-loop sizes")
    parser.add_argument("--rounds", type=int, default=4, help="FedAvg rounds (≥ 2)")
    parser.add_argument("--flower-timeout", type=float, default=900, help="seconds per side")
    parser.add_argument(
        "--executors",
        default="thread,process",
        help="Loom executors to run (the first one is compared)",
    )
    parser.add_argument("--executor", default="thread", help=argparse.SUPPRESS)
    parser.add_argument("--setup-only", action="store_true", help="make .venv-flower, exit")
    parser.add_argument("--side", choices=["loom", "loop"], help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    parser.add_argument("out", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:  # a child: one side at one size
        cfg = json.loads(args.settings)
        if args.side == "loom":
            loom_side(cfg, args.out, args.executor)
        else:
            loop_side(cfg, args.out)
        return
    flower_python = ensure_flower_env()
    if args.setup_only:
        return
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_DEDUP_LOGS": "0"}
    sizes = sorted({int(d) for d in (args.devices + "," + args.flower_devices).split(",")})
    rows = []
    for devices in sizes:
        cfg = json.dumps(settings(devices, args.rounds))
        sides: list[tuple[str, list[str]]] = []
        if str(devices) in args.devices.split(","):
            for executor in args.executors.split(","):
                command = [sys.executable, __file__, "--side", "loom", "--executor", executor]
                sides.append((f"loom-{executor}", [*command, "--settings", cfg]))
        if str(devices) in args.loop_devices.split(","):
            sides.append(("loop", [sys.executable, __file__, "--side", "loop", "--settings", cfg]))
        if str(devices) in args.flower_devices.split(","):
            sides.append(
                ("flower", [str(flower_python), str(ROOT / "benchmarks" / "fl_flower.py"), cfg])
            )
        for side, command in sides:
            print(f"{side} at {devices} devices ...", flush=True)
            record = measured(command, env, args.flower_timeout)
            rows.append(summary(side, devices, record))
            print("  ", rows[-1], flush=True)
    title = f"FedAvg, two tiers, {args.rounds} rounds, 2 cores (round_s: mean of rounds 2+)"
    tables = {title: rows}
    if compared := ratios(rows, "loom-" + args.executors.split(",")[0]):
        tables[
            f"Ratios (goals at 2,048: round time ≥ {GOAL_SPEEDUP:g}×, accuracy within 1 point, "
            f"memory ≤ {GOAL_MEMORY:g})"
        ] = compared
    publish("fl", tables)


if __name__ == "__main__":
    main()
