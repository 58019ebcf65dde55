"""Per-item records in the reference simulator's shape, and the diff against its own.

The authors' simulator writes one row per stored item (``output_<alg>_stats.csv``): its
index among the writes, size, the (N, K) it chose and its modelled times, printed with
C's ``%f``. ``scenario.records=reference`` writes ``per_item.csv`` in exactly that shape,
so that a run can be set beside the reference's row by row::

    python -m components.scenarios.placement_records per_item.csv per_item_DRexSC.csv

prints the first item where the two differ (stored by one only, another (N, K), or a time
that differs beyond the last printed digit) and how many items differ in each column.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from components.scenarios.placement_simulator import SimulationResult

REFERENCE_COLUMNS = (
    "ID",
    "Size",
    "Total_Transfer_Time",
    "Transfer_Time_Parralelized",
    "Chunking_Time",
    "N",
    "K",
    "Total_Read_Time",
    "Read_Time_Parralelized",
    "Reconstruct_Time",
)
CHOICE_COLUMNS = ("N", "K")
# %f prints six decimals; two runs of the same arithmetic may still differ in the last one
# (a sum taken in another order, a fit solved another way), so times compare within that.
TIME_TOLERANCE = 1.5e-6


def _c_float(value: float) -> str:
    """``value`` as C's ``printf("%f")`` prints it (``inf``, ``-inf``, ``-nan``)."""
    if math.isnan(value):
        return "-nan"  # x86's default NaN has its sign bit set, and glibc prints it
    return "%f" % value  # noqa: UP031 (C's format, on purpose)


def reference_rows(result: SimulationResult) -> Iterator[list[str]]:
    """The stored items (re-placements included) as the reference prints them."""
    r = result.records
    for i, outcome in enumerate(r.outcome):
        if outcome not in ("stored", "replaced"):
            continue
        yield [
            str(r.item[i]),
            _c_float(r.size_mb[i]),
            _c_float(r.write_total_s[i]),
            _c_float(r.write_slowest_s[i]),
            _c_float(r.encode_s[i]),
            str(r.n[i]),
            str(r.k[i]),
            _c_float(r.read_total_s[i]),
            _c_float(r.read_s[i]),
            _c_float(r.decode_s[i]),
        ]


def write_reference_records(result: SimulationResult, path: Path) -> Path:
    """Write ``result``'s stored items to ``path`` in the reference's ``_stats.csv`` shape."""
    with path.open("w", newline="") as out:
        out.write(",".join(REFERENCE_COLUMNS) + "\n")
        for row in reference_rows(result):
            out.write(",".join(row) + "\n")
    return path


@dataclass
class RecordDiff:
    """How two per-item files differ.

    Attributes:
        ours: Items stored in the first file.
        theirs: Items stored in the second.
        first: The first differing item: (ID, column, ours, theirs); None when none differs.
        by_column: How many items differ in each column (``stored`` when only one stored it).

    """

    ours: int = 0
    theirs: int = 0
    first: tuple[int, str, str, str] | None = None
    by_column: Counter[str] = field(default_factory=Counter)

    @property
    def same(self) -> bool:
        """Whether every item agrees."""
        return self.first is None


def _read(path: Path) -> dict[int, dict[str, str]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REFERENCE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{path}: missing column(s) {', '.join(missing)}; expected "
                f"{','.join(REFERENCE_COLUMNS)}"
            )
        return {int(row["ID"]): row for row in reader}


def _differs(column: str, ours: str, theirs: str) -> bool:
    if column in CHOICE_COLUMNS or column == "ID":
        return ours != theirs
    try:
        a, b = float(ours), float(theirs)
    except ValueError:
        return ours != theirs
    if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
        return not (math.isnan(a) and math.isnan(b)) and a != b
    return abs(a - b) > TIME_TOLERANCE * max(1.0, abs(b))


def diff_records(ours_path: Path, theirs_path: Path) -> RecordDiff:
    """Compare two per-item files item by item, in item order."""
    ours, theirs = _read(ours_path), _read(theirs_path)
    found = RecordDiff(len(ours), len(theirs))
    for item in sorted(ours.keys() | theirs.keys()):
        mine, other = ours.get(item), theirs.get(item)
        if mine is None or other is None:
            found.by_column["stored"] += 1
            if found.first is None:
                found.first = (item, "stored", "yes" if mine else "no", "yes" if other else "no")
            continue
        for column in REFERENCE_COLUMNS[1:]:
            if _differs(column, mine[column], other[column]):
                found.by_column[column] += 1
                if found.first is None:
                    found.first = (item, column, mine[column], other[column])
    return found


def main(argv: list[str] | None = None) -> int:
    """``python -m components.scenarios.placement_records OURS REFERENCE``: 0 if they agree."""
    parser = argparse.ArgumentParser(
        prog="python -m components.scenarios.placement_records",
        description="Compare a run's per_item.csv (scenario.records=reference) with the "
        "reference simulator's per-item output, item by item.",
    )
    parser.add_argument("ours", type=Path, help="per_item.csv of a Loom run")
    parser.add_argument("reference", type=Path, help="the reference's per-item CSV")
    args = parser.parse_args(argv)
    try:
        found = diff_records(args.ours, args.reference)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"items stored: {found.ours} here, {found.theirs} in the reference")
    if found.first is None:
        print("every item agrees: stored or not, (N, K) and every time")
        return 0
    item, column, mine, other = found.first
    print(f"first difference: item {item}, {column}: {mine} here, {other} in the reference")
    for column, count in found.by_column.most_common():
        print(f"  {column}: {count} item(s) differ")
    return 1


if __name__ == "__main__":
    sys.exit(main())
