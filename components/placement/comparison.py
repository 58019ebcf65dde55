"""Items stored by each placer relative to the best state-of-the-art baseline (D-Rex's headline)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

# The baselines the paper compares against (HDFS 3-rep, EC(3,2), EC(6,3), GlusterFS, DAOS).
BASELINES = ("hdfs_3rep", "ec_3_2", "ec_6_3", "glusterfs", "daos")
# What the paper reports, for the README's side-by-side (average over its experiments).
PAPER_CLAIMS = {"drex_sc": 1.45, "drex_lb": 1.45, "greedy_least_used": 1.21}


def placer_label(params: dict[str, Any]) -> str:
    """A run's placer, naming the two HDFS-RS recipes apart (``ec_3_2``, ``ec_6_3``)."""
    kind = str(params.get("placement.kind", "?"))
    if kind == "hdfs_rs":
        return f"ec_{int(float(params['placement.k']))}_{int(float(params['placement.p']))}"
    return kind


def relative_to_best_baseline(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per setting (target, node set, replays), each placer's items stored / the best baseline's.

    Runs without a baseline in their setting get no ratio (NaN).
    """
    setting_keys = ("scenario.reliability", "scenario.nodes", "scenario.replay")
    groups: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
    for run in runs:
        setting = tuple(str(run.get(k, "")) for k in setting_keys)
        groups[setting][placer_label(run)] = float(run.get("items_stored", 0.0))
    rows = []
    for setting, stored in sorted(groups.items()):
        present = {b: stored[b] for b in BASELINES if b in stored}
        best = max(present, key=lambda b: present[b]) if present else None
        for placer, items in sorted(stored.items(), key=lambda kv: -kv[1]):
            rows.append(
                {
                    "reliability": setting[0],
                    "nodes": setting[1].rsplit("/", 1)[-1].removesuffix(".csv"),
                    "replay": setting[2],
                    "placer": placer,
                    "items_stored": int(items),
                    "best_baseline": best or "-",
                    "vs_best_baseline": items / present[best]
                    if best and present[best]
                    else float("nan"),
                }
            )
    return rows
