"""``loom report``'s D-Rex comparison: groups of like jobs, paired seeds, options by name."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from components.base import FinishedJob
from components.scenarios.placement_comparison import (
    placer_label,
    relative_to_best_baseline,
    setting_keys,
    t_interval,
)
from tests.components.scenarios.test_placement_traces import REFERENCE_B

MEVA = "data/drex/workloads/MEVA_merged.csv"
FB = "data/drex/workloads/FB_style.csv"


def _job(
    placer: str, stored: float, workload: str = MEVA, seed: int = 0, **extra: str
) -> FinishedJob:
    params = {
        "scenario.workload": workload,
        "scenario.seed": json.dumps(seed),
        "scenario.reliability": "random",
        "scenario.records": "false",
        "description": "anything",
        "placement.kind": "hdfs_rs" if placer.startswith("ec_") else placer,
        "placement.k": "3",
        **extra,
    }
    return FinishedJob(params, {"items_stored": stored}, {"placement": placer})


def test_groups_are_every_differing_key_but_the_placer_and_the_seed() -> None:
    jobs = [
        _job("drex_sc", 100, MEVA, 0),
        _job("ec_3_2", 50, MEVA, 0, **{"placement.k": "3"}),
        _job("ec_6_3", 80, FB, 1, **{"placement.k": "6", "description": "other"}),
        _job("drex_sc", 90, FB, 1, **{"scenario.records": "true"}),
        # Run with -j 2 beside sequential runs: where and how it ran is no experiment.
        _job("drex_lb", 70, FB, 1, **{"runner.kind": "processes", "energy.share": "0.5"}),
    ]
    assert setting_keys(jobs) == ["scenario.workload"]


def test_each_seed_is_divided_by_its_own_best_baseline() -> None:
    jobs = [
        # MEVA: two seeds, ec_3_2 best in seed 0, ec_6_3 in seed 1
        _job("drex_sc", 100, MEVA, 0),
        _job("ec_3_2", 50, MEVA, 0),
        _job("ec_6_3", 40, MEVA, 0),
        _job("drex_sc", 90, MEVA, 1),
        _job("ec_3_2", 30, MEVA, 1),
        _job("ec_6_3", 60, MEVA, 1),
        # FB-style: a different workload must not be mixed in, whatever its seeds
        _job("drex_sc", 10, FB, 0),
        _job("ec_3_2", 1000, FB, 0),
    ]
    rows = {(r["workload"], r["placer"]): r for r in relative_to_best_baseline(jobs)}
    meva = rows[("MEVA_merged", "drex_sc")]
    assert meva["seeds"] == 2 and meva["items_stored"] == 95
    assert meva["vs_best_baseline"] == pytest.approx((100 / 50 + 90 / 60) / 2)
    low, high = meva["ci95_low"], meva["ci95_high"]
    # t(0.975, 1) = 12.706; the two ratios are 2.0 and 1.5
    assert (high - low) / 2 == pytest.approx(12.706 * 0.5 / 2**0.5 / 2**0.5, rel=1e-3)
    assert meva["best_baseline"] in {"ec_3_2", "ec_6_3"}
    fb = rows[("FB_style", "drex_sc")]
    assert fb["vs_best_baseline"] == pytest.approx(0.01)
    assert math.isnan(fb["ci95_low"])  # one seed: no interval
    assert rows[("MEVA_merged", "ec_6_3")]["note"] == ""


def test_groups_without_a_baseline_say_so() -> None:
    jobs = [
        _job("drex_sc", 100, MEVA, 0),
        _job("drex_lb", 90, MEVA, 0),
        _job("drex_sc", 100, FB, 0),
        _job("daos", 20, FB, 0),
        _job("drex_sc", 80, FB, 1),
    ]
    rows = {(r["workload"], r["placer"]): r for r in relative_to_best_baseline(jobs)}
    assert rows[("MEVA_merged", "drex_sc")]["note"] == "no baseline in this group"
    assert math.isnan(rows[("MEVA_merged", "drex_lb")]["vs_best_baseline"])
    partial = rows[("FB_style", "drex_sc")]
    assert partial["note"] == "no baseline for 1 of 2 seeds (left out)"
    assert partial["vs_best_baseline"] == 5.0


def test_glibc_seeds_0_and_1_are_one_replicate() -> None:
    jobs = [
        _job("drex_sc", 100, seed=0, **{"scenario.rng": "glibc"}),
        _job("ec_3_2", 50, seed=0, **{"scenario.rng": "glibc"}),
        _job("drex_sc", 100, seed=1, **{"scenario.rng": "glibc"}),
        _job("ec_3_2", 50, seed=1, **{"scenario.rng": "glibc"}),
        _job("drex_sc", 90, seed=0, **{"scenario.rng": "numpy"}),
        _job("ec_3_2", 50, seed=0, **{"scenario.rng": "numpy"}),
        _job("drex_sc", 80, seed=1, **{"scenario.rng": "numpy"}),
        _job("ec_3_2", 50, seed=1, **{"scenario.rng": "numpy"}),
    ]
    rows = {(r["rng"], r["placer"]): r for r in relative_to_best_baseline(jobs)}
    assert rows[("glibc", "drex_sc")]["seeds"] == 1  # srand(0) is srand(1)
    assert rows[("numpy", "drex_sc")]["seeds"] == 2
    assert rows[("numpy", "drex_sc")]["vs_best_baseline"] == pytest.approx(1.7)


def test_placers_are_named_as_chosen() -> None:
    old = FinishedJob({"placement.kind": "hdfs_rs", "placement.k": "6", "placement.p": "3"}, {})
    assert placer_label(old) == "ec_6_3"  # runs from before options were recorded
    assert placer_label(_job("glusterfs", 1)) == "glusterfs"


def test_t_interval() -> None:
    low, high = t_interval([1.0, 2.0, 3.0])
    assert (low + high) / 2 == pytest.approx(2.0)
    assert (high - low) / 2 == pytest.approx(4.303 / 3**0.5, rel=1e-3)
    assert all(math.isnan(v) for v in t_interval([1.0]))


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_node_sets_recipe_with_glibc_targets_gives_the_reference_items(workdir: Path) -> None:
    from framework.cli import main

    status = main(
        [
            "run",
            "recipe=drex/node_sets",
            "scenario.rng=glibc",
            "scenario.replay=1",
            "scenario.nodes=data/drex/nodes/10_most_used_nodes.csv",
        ]
    )
    assert status == 0
    names = {
        "drex_sc": "DRexSC",
        "drex_lb": "DRexLB",
        "greedy_min_storage": "GreedyMinStorage",
        "greedy_least_used": "GreedyLeastUsed",
        "hdfs_3rep": "HDFS_3rep",
        "ec_3_2": "EC_3_2",
        "ec_6_3": "EC_6_3",
        "glusterfs": "GlusterFS_6_4",
        "daos": "DAOS_1_0",
    }
    seen = set()
    for job in Path("results", "drex", "node_sets").glob("*/job-*"):
        placer = next(
            o.split("=", 1)[1]
            for o in (job / "overrides.txt").read_text().split()
            if o.startswith("placement=")
        )
        metrics = json.loads((job / "metrics.json").read_text())["aggregate"]
        if placer in names:
            assert metrics["items_stored"] == int(REFERENCE_B[("1", names[placer])]["items_stored"])
            seen.add(placer)
    assert seen == set(names)
    assert main(["report", "drex/node_sets"]) == 0
    comparison = pd.read_csv("results/reports/drex_node_sets_comparison.csv")
    assert {"ec_3_2", "ec_6_3", "random"} <= set(comparison["placer"])
    sc = comparison[comparison["placer"] == "drex_sc"].iloc[0]
    assert sc["vs_best_baseline"] == pytest.approx(4157 / 4152)  # DAOS stored 4152
    table = pd.read_csv("results/reports/drex_node_sets.csv")
    assert "placement" in table and "placement.k" not in table  # options, not kinds
    assert {"ec_3_2", "ec_6_3"} <= set(table["placement"])
