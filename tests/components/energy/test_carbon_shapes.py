"""The shipped carbon shapes read as series and keep the summary figures they were made from."""

from __future__ import annotations

import runpy
import statistics
from pathlib import Path

import pytest

from components.energy.carbon_series import CarbonSeries

CARBON = Path(__file__).resolve().parents[3] / "data" / "carbon"
# grid → (mean gCO2e/kWh, mean daily max/min) as data/carbon/README.md states them
STATED = {"de": (313.0, 1.56), "gb": (213.0, 1.75), "fr": (56.0, 1.35), "pl": (660.0, 1.18)}


def _hourly(name: str) -> list[float]:
    return list(CarbonSeries.read(CARBON / f"{name}.csv").values)


@pytest.mark.parametrize("name", list(STATED))
def test_each_shape_reads_and_keeps_its_mean_and_daily_ratio(name: str) -> None:
    values = _hourly(name)
    assert len(values) == 7 * 24
    mean, ratio = STATED[name]
    assert statistics.mean(values) == pytest.approx(mean, rel=0.005)
    days = [values[i : i + 24] for i in range(0, len(values), 24)]
    assert statistics.mean(max(d) / min(d) for d in days) == pytest.approx(ratio, abs=0.05)


def test_germany_over_france_hour_by_hour_stays_in_the_published_range() -> None:
    ratios = [de / fr for de, fr in zip(_hourly("de"), _hourly("fr"), strict=True)]
    assert min(ratios) >= 3.5 and max(ratios) <= 8.6


def test_the_generator_writes_the_committed_files(tmp_path: Path) -> None:
    script = (CARBON / "make_series.py").read_text()
    (tmp_path / "make_series.py").write_text(script)
    runpy.run_path(str(tmp_path / "make_series.py"), run_name="__main__")
    for name in STATED:
        assert (tmp_path / f"{name}.csv").read_text() == (CARBON / f"{name}.csv").read_text()
