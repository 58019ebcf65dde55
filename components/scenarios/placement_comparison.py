"""Items stored by each placer relative to the best state-of-the-art baseline (D-Rex's headline).

Jobs are compared only with jobs that ran the same experiment: the same value of every
parameter that differs between the jobs, except the placer's own (``placement.*``) and the
seed. Within such a group each seed is a paired replicate: a placer's items stored is divided
by the best baseline's *of the same seed*, and the ratios are summarised over seeds as a mean
and a 95 % Student-t interval, so a random-target headline says how much it owes to the draw.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from components.base import FinishedJob, is_bookkeeping

# The baselines the paper compares against (HDFS 3-rep, EC(3,2), EC(6,3), GlusterFS, DAOS).
BASELINES = ("hdfs_3rep", "ec_3_2", "ec_6_3", "glusterfs", "daos")
# What the paper reports, for the README's side-by-side (average over its experiments).
PAPER_CLAIMS = {"drex_sc": 1.45, "drex_lb": 1.45, "greedy_least_used": 1.21}
# Keys that name the replicate, not the experiment.
SEED_KEYS = ("seed", "scenario.seed")
# Besides the engine's bookkeeping (``is_bookkeeping``): keys that change neither what is placed
# nor how (retries of a trial, the recipe's name, whether records are written).
NOT_A_PLACEMENT = ("retries", "retry_delay_s", "recipe", "scenario.records")


def placer_label(job: FinishedJob) -> str:
    """A job's placer as the user chose it (``ec_3_2``), else named from its kind and code."""
    if "placement" in job.options:
        return job.options["placement"]
    kind = str(job.params.get("placement.kind", "?"))
    if kind == "hdfs_rs":  # runs from before options were recorded
        return f"ec_{int(float(job.params['placement.k']))}_{int(float(job.params['placement.p']))}"
    return kind


def seed_of(params: Mapping[str, str]) -> int:
    """The seed of a job's random draws: ``scenario.seed`` if set, else the run's ``seed``.

    glibc's ``srand(0)`` is ``srand(1)``, so with ``rng=glibc`` seeds 0 and 1 are one replicate.
    """
    seed = 0
    for key in SEED_KEYS[::-1]:
        value = params.get(key)
        if value not in (None, "", "null", "None"):
            seed = int(float(str(value)))
            break
    return 1 if seed == 0 and params.get("scenario.rng") == "glibc" else seed


def setting_keys(jobs: Sequence[FinishedJob]) -> list[str]:
    """The parameters that differ between jobs and define an experiment (the group keys)."""
    keys = sorted({k for job in jobs for k in job.params})
    return [
        key
        for key in keys
        if not key.startswith("placement.")
        and not is_bookkeeping(key)
        and key not in SEED_KEYS
        and key not in NOT_A_PLACEMENT
        and len({job.params.get(key) for job in jobs}) > 1
    ]


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """The Student-t interval of the mean (NaN, NaN with fewer than two values)."""
    if len(values) < 2:
        return math.nan, math.nan
    from scipy import stats

    mean = statistics.fmean(values)
    half = float(stats.t.ppf((1 + level) / 2, len(values) - 1)) * statistics.stdev(values)
    half /= math.sqrt(len(values))
    return mean - half, mean + half


def _shown(key: str, value: str | None) -> str:
    """A setting's value as the table shows it: file paths by their stem."""
    if value is None:
        return "unset"
    try:
        decoded = json.loads(value)
    except (TypeError, ValueError):
        decoded = value
    text = str(decoded)
    if key.endswith(("nodes", "workload", "path")) and "/" in text:
        return text.rsplit("/", 1)[-1].removesuffix(".csv")
    return text


def relative_to_best_baseline(jobs: Sequence[FinishedJob]) -> list[dict[str, Any]]:
    """Per experiment and placer: items stored / the best baseline's, over the seeds.

    Rows keep their experiment's keys (those that differ between jobs), the placer, how many
    seeds it ran, its mean items stored, the best baseline (the most frequent one over seeds),
    the mean ratio with its 95 % interval, and a note where a group has no baseline run (no
    ratio) or lacks one for some of the placer's seeds (those seeds left out).
    """
    keys = setting_keys(jobs)
    # experiment -> seed -> placer -> items stored (the latest job of each wins)
    groups: dict[tuple[str | None, ...], dict[int, dict[str, float]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for job in jobs:
        setting = tuple(job.params.get(k) for k in keys)
        stored = float(job.metrics.get("items_stored", 0.0))
        groups[setting][seed_of(job.params)][placer_label(job)] = stored
    rows = []
    for setting, by_seed in sorted(groups.items(), key=lambda kv: [str(v) for v in kv[0]]):
        placers = sorted({p for per in by_seed.values() for p in per})
        for placer in placers:
            seeds = sorted(s for s, per in by_seed.items() if placer in per)
            ratios, bests = [], []
            for seed in seeds:
                per = by_seed[seed]
                present = {b: per[b] for b in BASELINES if b in per}
                if present:
                    best = max(present, key=lambda b: present[b])
                    bests.append(best)
                    ratios.append(per[placer] / present[best] if present[best] else math.nan)
            low, high = t_interval(ratios)
            missing = len(seeds) - len(ratios)
            note = ""
            if not ratios:
                note = "no baseline in this group"
            elif missing:
                note = f"no baseline for {missing} of {len(seeds)} seeds (left out)"
            rows.append(
                {
                    **{
                        k.removeprefix("scenario."): _shown(k, v)
                        for k, v in zip(keys, setting, strict=True)
                    },
                    "placer": placer,
                    "seeds": len(seeds),
                    "items_stored": statistics.fmean(by_seed[s][placer] for s in seeds),
                    "best_baseline": max(set(bests), key=bests.count) if bests else "-",
                    "vs_best_baseline": statistics.fmean(ratios) if ratios else math.nan,
                    "ci95_low": low,
                    "ci95_high": high,
                    "note": note,
                }
            )
    rows.sort(
        key=lambda r: (
            *(str(r[k.removeprefix("scenario.")]) for k in keys),
            -float(str(r["items_stored"])),
        )
    )
    return rows
