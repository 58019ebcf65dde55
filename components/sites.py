"""Sites: the places a composite experiment spans, described once and named from the groups.

A site has its own grid (a carbon-intensity series or constant), machine profile, storage
containers behind the link to its parent, executor capacity and FL devices. One site is the
root (the cloud leader: no parent); every other names its parent and the link to it, so the
sites form a tree whose depth is the tier. The FL topology, the storage fabric's containers,
the energy accounting and the executors read their per-site parts from here instead of
repeating them per group.

``data/carbon/`` ships hourly shapes for four grids (``de``, ``gb``, ``fr``, ``pl``); a site's
``carbon`` names one of them, a CSV of ``timestamp,g_per_kwh`` rows, or a constant.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import Field, TypeAdapter, ValidationError

from components.base import LoomModel
from components.energy.carbon_series import CarbonSeries, CarbonSeriesError
from components.energy.profiles import ProfileName

GRIDS_DIR = Path(__file__).resolve().parents[1] / "data" / "carbon"
GRIDS = tuple(sorted(p.stem for p in GRIDS_DIR.glob("*.csv")))


class SiteLink(LoomModel):
    """The link from a site to its parent (both ways alike)."""

    bandwidth_mb_s: float = Field(gt=0, description="bandwidth to the parent, MB/s")
    latency_ms: float = Field(ge=0, description="one-way latency to the parent, ms")


class Site(LoomModel):
    """One site: its grid, machines, storage, capacity and devices, and its link upwards."""

    parent: str | None = Field(None, description="the site above (none: the root, the leader)")
    link: SiteLink | None = Field(None, description="the link to the parent (every tier has one)")
    carbon: float | str = Field(
        description="grid intensity: gCO2e/kWh, a shipped grid (de, gb, fr, pl) or a CSV path"
    )
    profile: ProfileName = Field("local", description="machine profile (energy)")
    containers: int = Field(1, description="storage containers of the fabric at the site")
    workers: int | None = Field(
        None,
        ge=1,
        description="executor workers at the site: set at any site, each site gets a pool of "
        "its own (1 where unset); set at none, the executor's one pool serves them all",
    )
    devices: int = Field(0, ge=0, description="FL devices behind the site's aggregator")

    def carbon_series(self) -> CarbonSeries | None:
        """The site's series (None: a constant, :attr:`carbon`)."""
        if not isinstance(self.carbon, str):
            return None
        path = GRIDS_DIR / f"{self.carbon}.csv" if self.carbon in GRIDS else Path(self.carbon)
        return CarbonSeries.read(path.expanduser())


_SITES = TypeAdapter(dict[str, Site])


def site_container(site: str, index: int) -> str:
    """The name of a site's ``index``-th storage container: ``<site>-c<index>``."""
    return f"{site}-c{index}"


class Sites:
    """A validated tree of sites (build with :meth:`parse`)."""

    def __init__(self, sites: Mapping[str, Site]) -> None:
        self.sites = dict(sites)

    @classmethod
    def parse(cls, data: Any, key: str = "sites") -> Sites:
        """Validate ``data`` (name → site) as a tree of sites.

        Raises:
            SitesError: every problem, one line each, naming ``key.<site>.<field>``.

        """
        try:
            sites = _SITES.validate_python(data)
        except ValidationError as exc:
            problems = [_describe(err, key) for err in exc.errors(include_url=False)]
            raise SitesError(problems) from None
        problems = site_problems(sites, key)
        if problems:
            raise SitesError(problems)
        return cls(sites)

    @cached_property
    def root(self) -> str:
        """The site with no parent."""
        return next(name for name, site in self.sites.items() if site.parent is None)

    def children(self, name: str) -> list[str]:
        """The sites whose parent is ``name``, in the order given."""
        return [child for child, site in self.sites.items() if site.parent == name]

    def container_names(self, name: str) -> list[str]:
        """The names of the storage containers at site ``name``."""
        return [site_container(name, i) for i in range(self.sites[name].containers)]

    def tier(self, name: str) -> int:
        """Links between ``name`` and the root (the root: 0)."""
        depth, parent = 0, self.sites[name].parent
        while parent is not None:
            depth, parent = depth + 1, self.sites[parent].parent
        return depth


class SitesError(ValueError):
    """Sites that do not form a usable tree; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def site_problems(sites: Mapping[str, Site], key: str = "sites") -> list[str]:
    """One line per problem of validated sites: the tree, the links, storage, the grids."""
    problems: list[str] = []
    names = ", ".join(sites) or "none"
    if not sites:
        return [f"{key} is empty: describe at least the root site (no parent)"]
    roots = [name for name, site in sites.items() if site.parent is None]
    if len(roots) != 1:
        found = ", ".join(roots) or "none"
        problems.append(
            f"{key}: exactly one site has no parent (the root); found {found}: "
            f"give the others a parent ({names})"
        )
    for name, site in sites.items():
        where = f"{key}.{name}"
        if site.parent is not None and site.parent not in sites:
            problems.append(f"{where}.parent={site.parent}: no such site; sites: {names}")
        if site.parent is not None and site.link is None:
            problems.append(
                f"{where}: a tier without a link: set {where}.link="
                "{bandwidth_mb_s: <MB/s>, latency_ms: <ms>} (the link to "
                f"{site.parent})"
            )
        if site.parent is None and site.link is not None:
            problems.append(f"{where}.link: the root has no parent to link to; drop it")
        if site.containers < 1:
            problems.append(
                f"{where}.containers={site.containers}: a site with no container; every site "
                "keeps chunks of the fabric: give it at least 1"
            )
        problems += _carbon_problems(site, where)
    problems += _cycles(sites, key)
    return problems


def _carbon_problems(site: Site, where: str) -> list[str]:
    if isinstance(site.carbon, float | int):
        if site.carbon < 0:
            return [f"{where}.carbon={site.carbon}: must be ≥ 0 gCO2e/kWh"]
        return []
    if site.carbon not in GRIDS and not Path(site.carbon).expanduser().exists():
        return [
            f"{where}.carbon={site.carbon}: neither a shipped grid ({', '.join(GRIDS)}) "
            "nor a CSV file of timestamp,g_per_kwh rows"
        ]
    try:
        site.carbon_series()
    except CarbonSeriesError as exc:
        return [f"{where}.carbon: {exc}"]
    return []


def _cycles(sites: Mapping[str, Site], key: str) -> list[str]:
    """Sites that do not reach the root by their parents (a loop)."""
    looped = []
    for name in sites:
        seen = [name]
        parent = sites[name].parent
        while parent is not None and parent in sites and parent not in seen:
            seen.append(parent)
            parent = sites[parent].parent
        if parent is not None and parent in seen:
            looped.append(name)
    if not looped:
        return []
    verb = "does" if len(looped) == 1 else "do"
    return [f"{key}: {', '.join(looped)} {verb} not reach the root: their parents form a loop"]


def _describe(err: Any, key: str) -> str:
    """A pydantic error as ``key.<site>.<field>=<value>: <what is allowed>``."""
    where = ".".join([key, *(str(part) for part in err["loc"])])
    if err["type"] == "extra_forbidden":
        model = SiteLink if len(err["loc"]) == 3 and err["loc"][1] == "link" else Site
        return f"unknown key '{where}'; allowed: {', '.join(model.model_fields)}"
    if err["type"] == "missing":
        return f"{where} is missing"
    return f"{where}={err.get('input')!r}: {err['msg']}"
