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

from components.placement._glibc_rand import GlibcRandom
from components.placement.cluster import Cluster
from components.placement.costs import NearestSize
from components.placement.reliability import random_targets
from components.placement.scheduling import SchedulingContext
from components.scenarios.placement_records import diff_records, main, write_reference_records
from components.scenarios.placement_simulation import PlacementSimulationConfig
from components.scenarios.placement_simulator import SimulationResult, Simulator
from components.scenarios.placement_workload import WorkloadError, as_c_floats, read_workload
from tests.components.placement.test_placement import DATA, MEVA, MOST_USED, SCHEDULERS, TIMES

REFERENCE_B = {
    (row["repetitions"], row["algorithm"]): row
    for row in csv.DictReader((DATA / "reference" / "scenario_B_small.csv").open())
}
FB_TRACE = DATA / "workloads" / "FB_merged_8337_data.csv"
REFERENCE_C = {
    row["algorithm"]: row
    for row in csv.DictReader((DATA / "reference" / "scenario_C_fb.csv").open())
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


# The reference's read_data(): each write's size through sscanf's %f, printed exactly.
C_SIZES = r"""
#include <stdio.h>
int main(int argc, char **argv) {
    FILE *file = fopen(argv[1], "r");
    char line[256];
    float size;
    int access;
    fgets(line, sizeof(line), file);
    while (fgets(line, sizeof(line), file))
        if (sscanf(line, "%*d,%f,%*f,%*f,%d", &size, &access) == 2 && access == 2)
            printf("%a\n", (double)size);
    return 0;
}
"""


def _compile(folder: Path, name: str, source: str, what: str) -> Path:
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip(f"no C compiler on this machine: {what} cannot be compared")
    (folder / f"{name}.c").write_text(source)
    subprocess.run(
        [compiler, "-O2", "-o", str(folder / name), str(folder / f"{name}.c"), "-lm"], check=True
    )
    return folder / name


@pytest.fixture(scope="module")
def c_rand(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _compile(tmp_path_factory.mktemp("c_rand"), "rand", C_PROGRAM, "glibc's rand()")


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


def _assert_totals(result: SimulationResult, reference: dict[str, str]) -> None:
    """Items, data stored and storage used, to the decimals the reference printed."""
    assert result.items_submitted == int(reference["items_submitted"])
    assert result.items_stored == int(reference["items_stored"])
    assert f"{result.data_stored_mb:.3f}" == reference["size_stored_MB"]
    assert f"{result.storage_used_mb:.3f}" == reference["total_storage_used_MB"]


def _assert_matches_reference_b(name: str, replay: int) -> None:
    _assert_totals(_simulate_b(name, replay).result, REFERENCE_B[(str(replay), name)])


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
    stored_sizes = [
        s
        for s, o in zip(result.records.size_mb, result.records.outcome, strict=True)
        if o == "stored"
    ]
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


def test_sizes_are_rounded_once_to_a_c_float() -> None:
    # The Facebook trace's 16.48841381072998 lies just below a float midpoint, but its
    # double lies on it: a cast through the double rounds up, scanf's %f (and we) down.
    assert as_c_floats([16.48841381072998], ["16.48841381072998"])[0] == 16.488412857055664
    tie = "1.000000059604644775390625"  # exactly halfway between 1 and the next float
    assert as_c_floats([float(tie)], [tie])[0] == 1.0  # round half to even, as C does
    above = tie + "1"  # a hair above: its double is still the midpoint
    assert float(above) == float(tie)
    assert as_c_floats([float(above)], [above])[0] == 1.0000001192092896


def test_the_facebook_trace_s_sizes_are_read_as_the_reference_reads_them(
    tmp_path: Path,
) -> None:
    program = _compile(tmp_path, "sizes", C_SIZES, "scanf's %f")
    printed = subprocess.run(
        [str(program), str(FB_TRACE)], check=True, capture_output=True, text=True
    ).stdout.split()
    workload = read_workload(FB_TRACE, 1, 0.9, 0)
    assert len(printed) == len(workload) == 5217
    assert [float.fromhex(v) for v in printed] == workload.sizes_mb.tolist()  # every bit


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_the_facebook_trace_matches_the_reference_item_for_item(tmp_path: Path, name: str) -> None:
    """Scenario C: FB_merged_8337 on the 10 most used nodes, random targets from srand(0)."""
    workload = read_workload(FB_TRACE, 1, None, seed=0, rng="glibc")
    context = SchedulingContext(coding_times=TIMES, nearest=NearestSize(start_mb=0.0))
    scheduler = SCHEDULERS[name]()  # type: ignore[operator]
    result = Simulator(Cluster.from_specs(MOST_USED), scheduler, context, TIMES).run(workload)
    reference = REFERENCE_C[name]
    _assert_totals(result, reference)
    stored = [
        n for n, o in zip(result.records.n, result.records.outcome, strict=True) if o == "stored"
    ]
    assert sum(stored) == int(reference["total_N"])
    # Every item: stored or not, the same (N, K), the same modelled times.
    ours = write_reference_records(result, tmp_path / "per_item.csv")
    found = diff_records(ours, DATA / "reference" / "fb" / f"per_item_{name}.csv")
    assert found.first is None, found.first
    assert found.ours == found.theirs == int(reference["items_stored"])


def test_the_record_diff_names_the_first_item_that_differs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = DATA / "reference" / "fb" / "per_item_EC_3_2.csv"
    lines = reference.read_text().splitlines(keepends=True)
    same = tmp_path / "same.csv"
    same.write_text("".join(lines[:200]))
    assert main([str(same), str(same)]) == 0
    assert "every item agrees" in capsys.readouterr().out
    # Item 41 coded (6, 3) instead of (5, 3), and item 120 not stored.
    changed = [
        line.replace(",5,3,", ",6,3,") if line.startswith("41,") else line
        for line in lines[:200]
        if not line.startswith("120,")
    ]
    other = tmp_path / "other.csv"
    other.write_text("".join(changed))
    assert main([str(other), str(same)]) == 1
    out = capsys.readouterr().out
    assert "first difference: item 41, N: 6 here, 5 in the reference" in out
    assert "stored: 1 item(s) differ" in out
    found = diff_records(other, same)
    assert (found.ours, found.theirs) == (198, 199)
    assert main([str(tmp_path / "missing.csv"), str(same)]) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_the_fb_trace_recipe_writes_the_reference_s_per_item_file(workdir: Path) -> None:
    from framework.cli import main as loom

    assert loom(["run", "recipe=drex/fb_trace", "placement=ec_3_2"]) == 0
    (written,) = Path("results/drex/fb_trace").glob("*/job-000/trial-000/per_item.csv")
    assert (written.parent / "items.csv.gz").exists()  # Loom's own records too
    found = diff_records(written, DATA / "reference" / "fb" / "per_item_EC_3_2.csv")
    assert found.first is None and found.ours == 2457
