"""Participation schedules over sites: each keeps its rules; the carbon-aware one follows grids."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from components.energy.carbon_series import CarbonSeries
from components.fl.participation import SiteLoad, plan_rounds, schedule

CARBON = Path(__file__).resolve().parents[3] / "data" / "carbon"
DEVICES = {"de": 64, "gb": 64, "fr": 32, "pl": 32}
START_H = 24.0  # a day of history for the forecast


def _hourly(grid: str) -> Callable[[float], float]:
    series = CarbonSeries.read(CARBON / f"{grid}.csv")
    t0 = series.times[0]
    return lambda hour: series.mean(t0 + hour * 3600, t0 + (hour + 1) * 3600)


def _sites(grids: dict[str, str] | None = None) -> dict[str, SiteLoad]:
    grids = grids or {site: site for site in DEVICES}
    return {s: SiteLoad(n, 0.002, _hourly(grids[s])) for s, n in DEVICES.items()}


def test_fixed_trains_every_device_hour_after_hour() -> None:
    plans = plan_rounds(schedule("fixed", _sites()), 5, START_H)
    assert [p.hour for p in plans] == [24, 25, 26, 27, 28]
    assert all(dict(p.devices) == DEVICES for p in plans)


def test_threshold_leaves_out_the_dirtiest_grid_of_each_hour() -> None:
    plans = plan_rounds(schedule("threshold", _sites()), 24, START_H)
    assert all("pl" not in p.devices and len(p.devices) == 3 for p in plans)


@pytest.mark.parametrize("kind", ["carbon_aware", "oracle"])
def test_carbon_aware_keeps_share_rotation_and_deferral(kind: str) -> None:
    plans = plan_rounds(schedule(kind, _sites(), share=0.6, max_skip=2, max_defer_h=2), 48, 24)  # type: ignore[arg-type]
    total = sum(DEVICES.values())
    assert all(sum(p.devices.values()) >= 0.6 * total for p in plans)
    for site in DEVICES:  # no site sits out more than two rounds in a row
        out = 0
        for plan in plans:
            out = 0 if site in plan.devices else out + 1
            assert out <= 2, (site, plan)
    starts = [START_H] + [p.hour + 1 for p in plans[:-1]]
    assert all(0 <= p.hour - s <= 2 for p, s in zip(plans, starts, strict=True))


def test_the_agent_follows_the_grids_when_they_change() -> None:
    as_shipped = plan_rounds(schedule("carbon_aware", _sites()), 24, START_H)
    swapped = plan_rounds(
        schedule("carbon_aware", _sites({"de": "fr", "gb": "gb", "fr": "de", "pl": "pl"})),
        24,
        START_H,
    )
    assert [set(p.devices) for p in as_shipped] != [set(p.devices) for p in swapped]
    # France's clean grid under Germany's name: Germany's devices now train most often.
    times_de = sum("de" in p.devices for p in swapped)
    assert times_de > sum("de" in p.devices for p in as_shipped)


def test_the_agent_spends_less_than_fixed_and_foresight_less_again_within_the_time() -> None:
    sites = _sites()
    runs = {
        kind: plan_rounds(schedule(kind, sites), 48, START_H)  # type: ignore[arg-type]
        for kind in ("fixed", "carbon_aware", "oracle")
    }
    carbon = {k: sum(p.carbon_g(sites) for p in plans) for k, plans in runs.items()}
    per_device = {k: carbon[k] / sum(sum(p.devices.values()) for p in runs[k]) for k in runs}
    assert carbon["oracle"] <= carbon["carbon_aware"] < carbon["fixed"]
    assert per_device["carbon_aware"] < per_device["fixed"]
    # Waits within the budget: 48 rounds take at most 1.2 times as long as back to back.
    hours = {k: plans[-1].hour + 1 - START_H for k, plans in runs.items()}
    assert hours["carbon_aware"] <= 1.2 * hours["fixed"]
    assert hours["oracle"] <= 1.2 * hours["fixed"]


def test_a_schedule_learns_each_sites_energy_from_the_rounds_it_is_told_of() -> None:
    sites = {s: SiteLoad(n, 0.002, _hourly("fr")) for s, n in DEVICES.items()}  # one grid
    told = schedule("carbon_aware", sites, share=0.5, max_skip=4)
    before = told.next_round(0, START_H)
    # Germany's devices measured at ten times what was expected, Poland's not measured.
    told.observe(
        {"de": 64 * 0.02, "gb": 64 * 0.002, "fr": 32 * 0.001}, {"de": 64, "gb": 64, "fr": 32}
    )
    learned = told.sites  # type: ignore[attr-defined]
    assert learned["de"].kwh_per_device == pytest.approx(0.02)
    assert learned["fr"].kwh_per_device == pytest.approx(0.001)
    # Unmeasured: the expectation scaled by the measured sites' mean ratio, (10 + 1 + 0.5) / 3.
    assert learned["pl"].kwh_per_device == pytest.approx(0.002 * 11.5 / 3)
    after = [told.next_round(i, START_H + i) for i in range(1, 4)]
    assert "de" in before.devices or "gb" in before.devices
    assert not any("de" in p.devices for p in after)  # now the costliest: passed over
