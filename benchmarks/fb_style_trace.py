"""Write ``data/drex/workloads/FB_style.csv``: a synthetic trace shaped like D-Rex's Facebook one.

The paper's Facebook SWIM trace (``FB_merged_8337_data.csv`` in the D-Rex repository: 8,337
rows, 5,217 writes, 3 of them of 0 MB) is not redistributed here. This trace has its shape:
the same columns and row counts, reads interleaved with the writes, sizes in MB from a
mixture of three log-normals (tiny metadata-like files, medium files, and a heavy tail of
10-1,000 GB files, capped at 2 TB as the real trace's largest are), 3 writes of size 0, and
submit times over about six hours. Its writes total about 1.2 times the capacity of the 10
most used nodes, so placers differ in what they manage to store.

Run: ``python benchmarks/fb_style_trace.py`` (deterministic: the same file every time).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "drex" / "workloads" / "FB_style.csv"
ROWS, WRITES, ZERO_WRITES = 8337, 5217, 3
# (weight, mean, standard deviation) of log10(size in MB) per component.
COMPONENTS = ((0.35, -2.8, 0.8), (0.45, 1.0, 1.0), (0.20, 4.9, 0.45))
MAX_MB = 2_000_000.0


def fb_style_rows(seed: int = 2009) -> list[tuple[int, float, int, int, int]]:
    """``(id, size MB, submit s, time spent, access type)`` rows in submit order."""
    rng = np.random.default_rng(seed)
    weights = np.array([w for w, _, _ in COMPONENTS])
    which = rng.choice(len(COMPONENTS), size=WRITES, p=weights / weights.sum())
    means = np.array([m for _, m, _ in COMPONENTS])[which]
    spreads = np.array([s for _, _, s in COMPONENTS])[which]
    sizes = np.minimum(10.0 ** rng.normal(means, spreads), MAX_MB)
    sizes[rng.choice(WRITES, size=ZERO_WRITES, replace=False)] = 0.0
    times = np.sort(rng.integers(0, 22_000, size=ROWS))
    is_write = np.zeros(ROWS, dtype=bool)
    is_write[0] = True  # a read needs an earlier write
    is_write[1 + rng.choice(ROWS - 1, size=WRITES - 1, replace=False)] = True
    rows: list[tuple[int, float, int, int, int]] = []
    written: list[tuple[int, float]] = []
    next_size = iter(sizes)
    for when, write in zip(times, is_write, strict=True):
        if write:
            item, size = len(written) + 1, float(next(next_size))
            written.append((item, size))
            rows.append((item, size, int(when), 0, 2))
        else:  # a read of an earlier write
            item, size = written[int(rng.integers(0, len(written)))]
            rows.append((item, size, int(when), 0, 1))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write (default {OUT})")
    args = parser.parse_args()
    rows = fb_style_rows()
    with args.out.open("w", encoding="utf-8") as out:
        out.write("id,size,Relative Time (s),time_spent,Access Type\n")
        for item, size, when, spent, access in rows:
            out.write(f"{item},{size!r},{when},{spent},{access}\n")
    writes = [r for r in rows if r[4] == 2]
    total = sum(r[1] for r in writes)
    print(
        f"{args.out}: {len(rows)} rows, {len(writes)} writes "
        f"({sum(r[1] == 0 for r in writes)} of 0 MB), {total / 1e6:.1f} TB written"
    )


if __name__ == "__main__":
    main()
