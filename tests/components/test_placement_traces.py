"""D-Rex on real traces: glibc's rand() for random targets, zero-size items, bad sizes."""

from __future__ import annotations

import csv
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from components.placement.cluster import Cluster
from components.placement.costs import NearestSize
from components.placement.glibc_rand import GlibcRandom
from components.placement.reliability import random_targets
from components.placement.scenarios import PlacementSimulationConfig
from components.placement.scheduling import SchedulingContext
from components.placement.simulator import Simulator
from components.placement.workload import WorkloadError, read_workload
from tests.components.test_placement import DATA, MEVA, MOST_USED, SCHEDULERS, TIMES

REFERENCE_B = {
    (row["repetitions"], row["algorithm"]): row
    for row in csv.DictReader((DATA / "reference" / "scenario_B_small.csv").open())
}

# srand(seed), then twenty rand() values; then twenty targets drawn as the reference's
# generate_reliability() draws them (rand() % 6 nines, then base + rand()/RAND_MAX·(1 - base)).
C_PROGRAM = r"""
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    unsigned int seed = (unsigned int)strtoul(argv[1], NULL, 10);
    srand(seed);
    for (int i = 0; i < 20; i++) printf("%d\n", rand());
    srand(seed);
    for (int i = 0; i < 20; i++) {
        int nines = rand() % 6;
        double base = 0;
        for (int j = 0; j < nines; j++) base += 0.9 / pow(10.0, j);
        printf("%.17g\n", base + ((double)rand() / RAND_MAX) * (1.0 - base));
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def c_rand(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler on this machine: glibc's rand() cannot be compared")
    folder = tmp_path_factory.mktemp("c_rand")
    (folder / "rand.c").write_text(C_PROGRAM)
    subprocess.run(
        [compiler, "-O2", "-o", str(folder / "rand"), str(folder / "rand.c"), "-lm"], check=True
    )
    return folder / "rand"


@pytest.mark.parametrize("seed", [0, 1, 42, 2**31 + 5])
def test_glibc_rand_matches_the_c_library(c_rand: Path, seed: int) -> None:
    printed = subprocess.run(
        [str(c_rand), str(seed)], check=True, capture_output=True, text=True
    ).stdout.split()
    ours = GlibcRandom(seed)
    assert [ours.rand() for _ in range(20)] == [int(v) for v in printed[:20]]
    targets = random_targets(20, seed, "glibc")
    assert targets.tolist() == [float(v) for v in printed[20:]]  # every bit of every double


def test_srand_zero_is_srand_one_and_bad_seeds_are_refused() -> None:
    zero, one = GlibcRandom(0), GlibcRandom(1)
    assert [zero.rand() for _ in range(5)] == [one.rand() for _ in range(5)]
    with pytest.raises(ValueError, match="unsigned 32-bit"):
        GlibcRandom(2**32)
    with pytest.raises(ValidationError, match="srand takes 0"):
        PlacementSimulationConfig(reliability="random", rng="glibc", seed=2**32)


def test_random_targets_lie_in_their_nines() -> None:
    for rng in ("numpy", "glibc"):
        targets = random_targets(5000, 3, rng)  # type: ignore[arg-type]
        assert ((targets >= 0) & (targets <= 1)).all()
        nines = np.floor(-np.log10(1 - np.minimum(targets, 1 - 1e-12)))
        assert set(np.unique(np.clip(nines, 0, 5)).tolist()) == {0, 1, 2, 3, 4, 5}
    assert random_targets(10, 3, "numpy").tolist() != random_targets(10, 3, "glibc").tolist()


def _simulate_b(name: str, replay: int) -> Simulator:
    scheduler = SCHEDULERS[name]()  # type: ignore[operator]
    workload = read_workload(MEVA, replay, None, seed=0, rng="glibc")
    context = SchedulingContext(coding_times=TIMES, nearest=NearestSize(start_mb=0.0))
    sim = Simulator(Cluster.from_specs(MOST_USED), scheduler, context, TIMES)
    sim.run(workload)
    return sim


def _assert_matches_reference_b(name: str, replay: int) -> None:
    reference = REFERENCE_B[(str(replay), name)]
    result = _simulate_b(name, replay).result
    assert result.items_submitted == int(reference["items_submitted"])
    assert result.items_stored == int(reference["items_stored"])
    assert f"{result.data_stored_mb:.3f}" == reference["size_stored_MB"]
    assert f"{result.storage_used_mb:.3f}" == reference["total_storage_used_MB"]


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_random_targets_reproduce_the_reference_one_replay(name: str) -> None:
    _assert_matches_reference_b(name, 1)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_random_targets_reproduce_the_reference_25_replays(name: str) -> None:
    _assert_matches_reference_b(name, 25)


def _trace(path: Path, rows: list[str]) -> Path:
    path.write_text("id,size,Relative Time (s),time_spent,Access Type\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_zero_size_writes_are_placed_stored_and_counted(tmp_path: Path, name: str) -> None:
    sizes = [0.0, 0.7, 0.0, 180.5, 0.0, 12.0, 0.0, 430.0, 0.001, 0.0, 55.0]
    rows = [f"{i},{s},{i * 3},0,2" for i, s in enumerate(sizes)]
    rows.insert(4, "99,0.0,5,0,1")  # a read of a zero-size item: not placed
    workload = read_workload(_trace(tmp_path / "fb.csv", rows), 2, 0.999, 0)
    assert len(workload) == 2 * len(sizes)
    context = SchedulingContext(coding_times=TIMES, nearest=NearestSize(start_mb=0.0))
    scheduler = SCHEDULERS[name]()  # type: ignore[operator]
    sim = Simulator(Cluster.from_specs(MOST_USED), scheduler, context, TIMES)
    result = sim.run(workload)
    assert result.items_submitted == 22
    zero = [i for i, size in enumerate(result.records.size_mb) if size == 0]
    assert len(zero) == 10
    # Every zero-size item is stored, in chunks of 0 MB with its own (N, K).
    assert all(result.records.outcome[i] == "stored" for i in zero)
    assert all(result.records.n[i] >= 2 for i in zero)
    stored_sizes = [s for s, o in zip(result.records.size_mb, result.records.outcome,
                                      strict=True) if o == "stored"]  # fmt: skip
    assert result.items_stored == len(stored_sizes)
    assert result.data_stored_mb == pytest.approx(sum(stored_sizes))
    metrics = result.metrics()
    assert all(math.isfinite(v) for v in metrics.values())  # inf coding times are not summed
    assert metrics["write_throughput_mb_s"] > 0


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("1,-0.5,3,0,2", r"line 3: size '-0.5' MB must be a number ≥ 0"),
        ("1,nan,3,0,2", r"line 3: size 'nan' MB must be a number ≥ 0"),
        ("1,inf,3,0,2", r"line 3: size 'inf' MB"),
        ("1,big,3,0,2", r"line 3: cannot read"),
        ("1,2.0,soon,0,2", r"line 3: cannot read"),
        ("1,2.0,nan,0,2", r"line 3: submit time 'nan' s must be a number"),
    ],
)
def test_bad_sizes_are_refused_with_their_line(tmp_path: Path, row: str, message: str) -> None:
    path = _trace(tmp_path / "bad.csv", ["0,0.0,1,0,2", row])
    with pytest.raises(WorkloadError, match=message):
        read_workload(path, 1, 0.9, 0)
    with pytest.raises(ValidationError, match=message):
        PlacementSimulationConfig(workload=str(path))


def test_the_fb_style_trace_has_the_facebook_trace_s_shape() -> None:
    import importlib.util

    script = DATA.parents[1] / "benchmarks" / "fb_style_trace.py"
    spec = importlib.util.spec_from_file_location("fb_style_trace", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    generated = module.fb_style_rows()
    path = DATA / "workloads" / "FB_style.csv"
    committed = list(csv.reader(path.open()))[1:]
    for rows in ([(r[1], r[4]) for r in generated], [(float(r[1]), int(r[4])) for r in committed]):
        writes = [size for size, access in rows if access == 2]
        assert (len(rows), len(writes), writes.count(0.0)) == (8337, 5217, 3)
    workload = read_workload(path, 1, None, 1, "glibc")
    assert len(workload) == 5217 and int((workload.sizes_mb == 0).sum()) == 3
    assert 130e6 < workload.sizes_mb.sum() < 150e6  # ≈ 1.2 x the 10 most used nodes
