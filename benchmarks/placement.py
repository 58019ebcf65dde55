"""Placement figures (issue 4): scheduling time per item, and the full reliability sweep.

Run:  python benchmarks/placement.py [--quick] [--full-sweep [--replay 250] [--workers 2]]
Prints the tables and writes results/benchmarks/placement.{md,json}.

1. scheduling time per item (mean and p99, µs) of every scheduler at 10 and 50 nodes, on the
   first items of MEVA placed on empty nodes; goal LB < 1 ms and SC < 50 ms at 10 nodes
2. D-Rex SC vectorized vs the same rule written as a plain Python loop over subsets (the
   named peer), in the same run: ratio and whether both chose the same nodes
3. (--full-sweep) every scheduler x five targets on the 10 most used nodes with MEVA x 250,
   simulated in a pool of worker processes: wall time, and items stored relative to the best
   state-of-the-art baseline (the paper's headline)
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from itertools import combinations
from pathlib import Path

import numpy as np
from tables import publish  # benchmarks/ is the script's folder

from components.base import FinishedJob
from components.placement.cluster import Cluster, NodeSpec, read_nodes
from components.placement.costs import CodingTimes, coding_seconds
from components.placement.daos import Daos
from components.placement.drex_lb import DrexLB
from components.placement.drex_sc import DrexSC
from components.placement.glusterfs import GlusterFS
from components.placement.greedy_least_used import GreedyLeastUsed
from components.placement.greedy_min_storage import GreedyMinStorage
from components.placement.hdfs_3rep import Hdfs3Rep
from components.placement.hdfs_rs import HdfsRS
from components.placement.random import RandomScheduler
from components.placement.reliability import max_k
from components.placement.scheduling import Scheduler, SchedulingContext
from components.scenarios.placement_comparison import relative_to_best_baseline
from components.scenarios.placement_simulator import Simulator
from components.scenarios.placement_workload import ItemWorkload, read_workload

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "drex"
TARGETS = (0.9, 0.99, 0.999, 0.9999, 0.99999)


def schedulers() -> dict[str, Scheduler]:
    """Every scheduler of the sweep, fresh."""
    return {
        "drex_sc": DrexSC(),
        "drex_lb": DrexLB(),
        "greedy_min_storage": GreedyMinStorage(),
        "greedy_least_used": GreedyLeastUsed(),
        "hdfs_3rep": Hdfs3Rep(),
        "ec_3_2": HdfsRS(3, 2),
        "ec_6_3": HdfsRS(6, 3),
        "glusterfs": GlusterFS(6, 4),
        "daos": Daos(1),
        "random": RandomScheduler(0),
    }


def node_set(count: int) -> list[NodeSpec]:
    """The 10 most used nodes, repeated to ``count`` nodes (ids renumbered)."""
    base = read_nodes(DATA / "nodes" / "10_most_used_nodes.csv")
    return [replace(base[i % len(base)], node_id=i) for i in range(count)]


def first_items(workload: ItemWorkload, items: int) -> ItemWorkload:
    """The workload's first ``items`` items."""
    head = slice(0, items)
    return replace(
        workload,
        sizes_mb=workload.sizes_mb[head],
        submit_s=workload.submit_s[head],
        targets=workload.targets[head],
    )


def timing_rows(quick: bool) -> list[dict[str, object]]:
    times = CodingTimes.load(DATA / "ec_times")
    workload = read_workload(DATA / "workloads" / "MEVA_merged.csv", 1, 0.999, 0)
    rows = []
    for count in (10, 50):
        for name, scheduler in schedulers().items():
            items = (200 if quick else 1000) if name != "drex_sc" or count == 10 else 100
            sim = Simulator(
                Cluster.from_specs(node_set(count)),
                scheduler,
                SchedulingContext(coding_times=times),
                times,
            )
            sim.run(first_items(workload, items))
            spent = np.array(sim.result.records.schedule_us[5:])  # first calls build caches
            rows.append(
                {
                    "nodes": count,
                    "scheduler": name,
                    "items": items,
                    "mean_us": round(float(spent.mean()), 1),
                    "p99_us": round(float(np.percentile(spent, 99)), 1),
                    "goal": {"drex_lb": "< 1000 µs at 10", "drex_sc": "< 50000 µs at 10"}.get(
                        name, ""
                    ),
                }
            )
    return rows


def naive_sc(cluster: Cluster, size: float, target: float, times: CodingTimes) -> tuple[int, ...]:
    """D-Rex SC's rule as a plain loop over subsets (the peer of the vectorized one)."""
    live = [i for i in cluster.order if cluster.up[i]]
    n_nodes, max_node, min_data = len(live), float(cluster.capacity.max()), cluster.min_item_mb
    candidates = []
    for r in range(2, n_nodes + 1):
        for group in combinations(live, r):
            k = max_k([float(cluster.p_fail[i]) for i in group], target)
            if k is None or any(cluster.free[i] < size / k for i in group):
                continue
            chunk = size / k
            sat = (
                sum(
                    1
                    - (1 / n_nodes)
                    ** ((cluster.free[i] - chunk - max_node) / (min_data - max_node))
                    for i in group
                )
                / r
            )
            link = size / 3125
            t = (
                float(coding_seconds(times.encode[0], r, k, 1, size))
                + max(link, chunk / min(cluster.write_bw[i] for i in group))
                + max(link, chunk / min(cluster.read_bw[i] for i in group))
                + float(coding_seconds(times.decode[0], r, k, 1, size))
            )
            candidates.append((t, chunk * r, sat, group))
    front = [
        c
        for c in candidates
        if not any(
            all(o[j] <= c[j] for j in range(3)) and any(o[j] < c[j] for j in range(3))
            for o in candidates
        )
    ]
    lo = [min(c[j] for c in front) for j in range(3)]
    hi = [max(c[j] for c in front) for j in range(3)]
    sys_sat = 1 - (1 / n_nodes) ** (
        (cluster.total_free - cluster.total_capacity) / (min_data - cluster.total_capacity)
    )

    def score(c: tuple[float, float, float, tuple[int, ...]]) -> float:
        s = [
            100 - (c[j] - lo[j]) * 100 / (hi[j] - lo[j]) if hi[j] > lo[j] else 0.0 for j in range(3)
        ]
        return (1 - sys_sat) * s[0] + (s[1] + s[2]) / 2

    return max(front, key=score)[3]


def sc_peer_rows(quick: bool) -> list[dict[str, object]]:
    times = CodingTimes.load(DATA / "ec_times")
    sizes = read_workload(DATA / "workloads" / "MEVA_merged.csv", 1, 0.999, 0).sizes_mb
    items = 20 if quick else 60
    cluster = Cluster.from_specs(node_set(10))
    ctx = SchedulingContext(coding_times=times)
    fast, slow, same = 0.0, 0.0, 0
    vectorized = DrexSC()
    for size in sizes[:items]:
        size = float(size)
        cluster.min_item_mb = min(cluster.min_item_mb, size)
        ctx.nearest.index = 0  # price every item at the 1 MB plane in both versions
        start = time.perf_counter()
        decision = vectorized.schedule(cluster, size, 0.999, ctx)
        fast += time.perf_counter() - start
        start = time.perf_counter()
        chosen = naive_sc(cluster, size, 0.999, times)
        slow += time.perf_counter() - start
        same += set(chosen) == set(decision.nodes)
        for node in decision.nodes:
            cluster.free[node] -= size / decision.k
    return [
        {
            "items": items,
            "vectorized_ms": round(1000 * fast / items, 3),
            "python_loop_ms": round(1000 * slow / items, 1),
            "speedup": round(slow / fast, 1),
            "same_choice": f"{same}/{items}",
        }
    ]


def _simulate(job: tuple[str, float, int]) -> dict[str, object]:
    name, target, replay = job
    times = CodingTimes.load(DATA / "ec_times")
    workload = read_workload(DATA / "workloads" / "MEVA_merged.csv", replay, target, 0)
    sim = Simulator(
        Cluster.from_specs(node_set(10)),
        schedulers()[name],
        SchedulingContext(coding_times=times),
        times,
        keep_records=False,
    )
    start = time.perf_counter()
    metrics = sim.run(workload).metrics()
    return {"scheduler": name, "target": target, "seconds": time.perf_counter() - start, **metrics}


def sweep_rows(replay: int, workers: int) -> tuple[list[dict[str, object]], float]:
    jobs = [(name, target, replay) for target in TARGETS for name in schedulers()]
    jobs.sort(key=lambda j: j[0] != "drex_sc")  # the long ones first
    start = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        done = list(pool.map(_simulate, jobs))
    wall = time.perf_counter() - start
    runs = [
        FinishedJob(
            params={"scenario.reliability": str(r["target"])},
            metrics={"items_stored": float(str(r["items_stored"]))},
            options={"placement": str(r["scheduler"])},
        )
        for r in done
    ]
    seconds = {(r["scheduler"], str(r["target"])): r["seconds"] for r in done}
    rows = relative_to_best_baseline(runs)
    for row in rows:
        row["sim_s"] = round(float(str(seconds[(row["placer"], row["reliability"])])), 1)
        row["vs_best_baseline"] = round(float(row["vs_best_baseline"]), 3)
    return rows, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer items (a smoke run)")
    parser.add_argument("--full-sweep", action="store_true", help="also run table 3")
    parser.add_argument("--replay", type=int, default=250, help="MEVA replays in table 3")
    parser.add_argument("--workers", type=int, default=2, help="processes in table 3")
    args = parser.parse_args()
    tables = {
        "1. scheduling time per item (µs)": timing_rows(args.quick),
        "2. D-Rex SC vectorized vs a Python loop over subsets (10 nodes)": sc_peer_rows(args.quick),
    }
    if args.full_sweep:
        rows, wall = sweep_rows(args.replay, args.workers)
        title = (
            f"3. reliability sweep, MEVA x {args.replay}, {args.workers} worker processes: "
            f"{wall / 60:.1f} min wall"
        )
        tables[title] = rows
    publish("placement", tables)


if __name__ == "__main__":
    main()
