"""Sites: one tree of places, each error one clear line naming the key and what is allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.sites import GRIDS, Sites, SitesError

LINK = {"bandwidth_mb_s": 50.0, "latency_ms": 20.0}


def _federation() -> dict[str, Any]:
    return {
        "cloud": {"carbon": "fr", "containers": 2, "workers": 2},
        "de": {"parent": "cloud", "link": LINK, "carbon": "de", "devices": 64},
        "gb": {"parent": "cloud", "link": LINK, "carbon": "gb", "devices": 64},
        "pl": {"parent": "cloud", "link": LINK, "carbon": 660.0, "devices": 32},
        "de-north": {"parent": "de", "link": LINK, "carbon": "de", "devices": 16},
    }


def test_a_tree_of_sites_knows_its_root_children_tiers_and_grids() -> None:
    sites = Sites.parse(_federation())
    assert sites.root == "cloud"
    assert sites.children("cloud") == ["de", "gb", "pl"]
    assert [sites.tier(n) for n in ("cloud", "de", "de-north")] == [0, 1, 2]
    assert set(GRIDS) == {"de", "gb", "fr", "pl"}
    de = sites.sites["de"].carbon_series()
    assert de is not None and len(de.values) == 7 * 24
    assert sites.sites["pl"].carbon_series() is None  # a constant


def _problems(change: dict[str, Any]) -> list[str]:
    data = _federation()
    for name, site in change.items():
        if site is None:
            del data[name]
        else:
            data[name] = {**data.get(name, {}), **site}
    with pytest.raises(SitesError) as caught:
        Sites.parse(data)
    return caught.value.problems


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"gb": {"parent": "mars"}}, "sites.gb.parent=mars: no such site; sites: cloud, de"),
        ({"gb": {"containers": 0}}, "sites.gb.containers=0: a site with no container"),
        ({"gb": {"link": None}}, "sites.gb: a tier without a link: set sites.gb.link="),
        ({"gb": {"parent": None, "link": None}}, "exactly one site has no parent (the root); "),
        ({"cloud": {"link": LINK}}, "sites.cloud.link: the root has no parent to link to"),
        ({"gb": {"carbon": "mars"}}, "sites.gb.carbon=mars: neither a shipped grid (de, fr, gb"),
        ({"gb": {"carbon": -1.0}}, "sites.gb.carbon=-1.0: must be ≥ 0 gCO2e/kWh"),
        ({"gb": {"devise": 3}}, "unknown key 'sites.gb.devise'; allowed: parent, link, carbon"),
        (
            {"gb": {"link": {"bandwith_mb_s": 5, "latency_ms": 1}}},
            "unknown key 'sites.gb.link.bandwith_mb_s'; allowed: bandwidth_mb_s, latency_ms",
        ),
        ({"gb": {"workers": 0}}, "sites.gb.workers=0: Input should be greater than or equal to 1"),
    ],
    ids=[
        "unknown-parent",
        "no-container",
        "tier-without-link",
        "two-roots",
        "root-with-link",
        "unknown-grid",
        "negative-carbon",
        "misspelt-key",
        "misspelt-link-key",
        "no-workers",
    ],
)
def test_each_mistake_is_one_line_naming_the_key(change: dict[str, Any], expected: str) -> None:
    problems = _problems(change)
    assert any(expected in line for line in problems), problems


def test_parents_that_loop_are_named() -> None:
    problems = _problems({"de": {"parent": "de-north"}})
    assert problems == ["sites: de, de-north do not reach the root: their parents form a loop"]


def test_an_empty_description_and_a_bad_series_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SitesError, match="sites is empty"):
        Sites.parse({})
    series = tmp_path / "grid.csv"
    series.write_text("timestamp,g_per_kwh\n2026-01-05T00:00:00Z,100\n2026-01-05T01:00:00Z,oops\n")
    problems = _problems({"gb": {"carbon": str(series)}})
    assert any(line.startswith("sites.gb.carbon: ") and "grid.csv" in line for line in problems)


def test_a_scenario_that_does_not_use_sites_refuses_them(tmp_path: Path) -> None:
    from framework.compose import Composer
    from framework.errors import ConfigError

    recipe = tmp_path / "sites.yaml"
    recipe.write_text(
        "# @package _global_\nsites:\n  cloud: {carbon: fr}\n"
        "  de: {parent: cloud, carbon: de, link: {bandwidth_mb_s: 10, latency_ms: 5}}\n"
    )
    with pytest.raises(ConfigError, match="sites is set, but scenario=synthetic does not use"):
        Composer().compose([f"recipe={recipe}", "scenario=synthetic"])
    with pytest.raises(ConfigError, match=r"sites.de: a tier without a link"):
        Composer().compose(
            [
                "scenario=synthetic",
                "~sites",
                "+sites={c: {carbon: fr}, de: {parent: c, carbon: de}}",
            ]
        )
