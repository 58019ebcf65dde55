"""Who trains in the next round, and when: participation schedules for a federation over sites.

Before each round a schedule picks the hour the round starts and how many devices of each site
train in it. A round lasts one hour of the sites' carbon series; a device's round costs its
site's energy per device-round times the site's intensity at that hour. Schedules:

- ``fixed``: every device of every site, rounds back to back (Flight's default);
- ``random``: each site with probability ``share``, seeded;
- ``threshold``: every site but the dirtiest at that hour (the simple rule to beat);
- ``carbon_aware``: the cleanest sites that hold ``share`` of the devices, every site at least
  once every ``max_skip + 1`` rounds (its data keeps reaching the model), a round deferred by
  up to ``max_defer_h`` hours where the forecast is cleaner then, while the run's waits stay
  within ``defer_budget`` of its rounds (0.2: 20 rounds may wait 4 hours in all). It knows
  each grid's intensity up to now; its forecast of a later hour is that hour a day earlier;
- ``oracle``: the same rule and budget knowing the future intensities: the bound of what a
  better forecast could buy.

A schedule starts from the energy a device's round is expected to take and learns it from the
rounds it is told of (:meth:`Schedule.observe`): each site's measured energy per device-round,
and for a site not measured yet its expectation scaled as the measured sites' were. The
schedules see only hours, intensities and energies; what a round gains in accuracy is the
scenario's to measure.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

ScheduleKind = Literal["fixed", "random", "threshold", "carbon_aware", "oracle"]


@dataclass(frozen=True)
class SiteLoad:
    """What a schedule knows of a site.

    Attributes:
        devices: Devices behind the site's aggregator.
        kwh_per_device: Energy of one device's round at the site.
        intensity: gCO2e/kWh at an hour since the run's start.
        kwh_per_round: Energy the site's taking part costs whatever its devices (the models
            over its link), charged at its intensity too.

    """

    devices: int
    kwh_per_device: float
    intensity: Callable[[float], float]
    kwh_per_round: float = 0.0


@dataclass(frozen=True)
class RoundPlan:
    """One round: the hour it starts and the devices that train, by site (absent: none)."""

    hour: float
    devices: Mapping[str, int]

    def carbon_g(self, sites: Mapping[str, SiteLoad]) -> float:
        """Operational carbon of the round's training."""
        return sum(
            (n * sites[s].kwh_per_device + sites[s].kwh_per_round) * sites[s].intensity(self.hour)
            for s, n in self.devices.items()
        )


class Schedule(Protocol):
    """Plans rounds one at a time (so a steering agent can act between them)."""

    def next_round(self, index: int, earliest_hour: float) -> RoundPlan:
        """The plan of round ``index``, starting at ``earliest_hour`` or later."""

    def observe(self, kwh: Mapping[str, float], devices: Mapping[str, int]) -> None:
        """Learn from a round: the training energy (kWh) each site's ``devices`` spent."""


@dataclass
class _Base:
    sites: Mapping[str, SiteLoad]
    _expected: dict[str, float] = field(init=False, default_factory=dict)
    _measured: dict[str, tuple[float, int]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._expected = {s: load.kwh_per_device for s, load in self.sites.items()}

    def observe(self, kwh: Mapping[str, float], devices: Mapping[str, int]) -> None:
        """Each site's mean measured kWh per device-round; unmeasured sites scaled alike."""
        for site, count in devices.items():
            if count > 0 and site in self.sites:
                spent, seen = self._measured.get(site, (0.0, 0))
                self._measured[site] = (spent + kwh.get(site, 0.0), seen + count)
        ratios = [
            spent / seen / self._expected[s]
            for s, (spent, seen) in self._measured.items()
            if self._expected[s] > 0
        ]
        scale = sum(ratios) / len(ratios) if ratios else 1.0
        learned = {}
        for site, load in self.sites.items():
            spent, seen = self._measured.get(site, (0.0, 0))
            estimate = spent / seen if seen else self._expected[site] * scale
            learned[site] = replace(load, kwh_per_device=estimate)
        self.sites = learned

    def _all(self) -> dict[str, int]:
        return {s: load.devices for s, load in self.sites.items() if load.devices}

    def _g_per_device(self, site: str, hour: float) -> float:
        """A device's share of its site's carbon in a round at ``hour`` (all its devices train)."""
        load = self.sites[site]
        kwh = load.kwh_per_device + load.kwh_per_round / max(1, load.devices)
        return kwh * load.intensity(hour)


@dataclass
class Fixed(_Base):
    """Every device, every round, back to back."""

    def next_round(self, index: int, earliest_hour: float) -> RoundPlan:
        """All sites at the earliest hour."""
        del index
        return RoundPlan(earliest_hour, self._all())


@dataclass
class RandomSites(_Base):
    """Each site with probability ``share`` (at least one site a round), seeded."""

    share: float = 0.6
    seed: int = 0
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._rng = random.Random(self.seed)

    def next_round(self, index: int, earliest_hour: float) -> RoundPlan:
        """A seeded draw of sites at the earliest hour."""
        del index
        every = self._all()
        chosen = {s: n for s, n in every.items() if self._rng.random() < self.share}
        if not chosen:
            site = self._rng.choice(sorted(every))
            chosen = {site: every[site]}
        return RoundPlan(earliest_hour, chosen)


@dataclass
class Threshold(_Base):
    """Every site but the one with the dirtiest grid at that hour."""

    def next_round(self, index: int, earliest_hour: float) -> RoundPlan:
        """All but the dirtiest site, at the earliest hour."""
        del index
        every = self._all()
        dirtiest = max(every, key=lambda s: self.sites[s].intensity(earliest_hour))
        return RoundPlan(earliest_hour, {s: n for s, n in every.items() if s != dirtiest})


@dataclass
class CarbonAware(_Base):
    """The cleanest sites holding ``share`` of the devices; rounds moved to cleaner hours.

    Attributes:
        share: Share of all devices a round trains (whole sites, cleanest first).
        max_skip: Rounds in a row a site may sit out.
        max_defer_h: Hours a round may wait for a cleaner hour.
        defer_budget: Hours of waiting in all, per round planned so far.

    """

    share: float = 0.6
    max_skip: int = 2
    max_defer_h: int = 2
    defer_budget: float = 0.2
    _skipped: dict[str, int] = field(init=False, default_factory=dict)
    _waited_h: float = field(init=False, default=0.0)

    def next_round(self, index: int, earliest_hour: float) -> RoundPlan:
        """The cheapest (hour, sites) by the forecast, within the waits allowed."""
        allowed = min(self.max_defer_h, int(self.defer_budget * (index + 1) - self._waited_h))
        options = [
            self._sites_at(earliest_hour + wait, earliest_hour)
            for wait in range(max(0, allowed) + 1)
        ]
        best = min(options, key=lambda o: (o[1], o[0].hour))[0]
        self._waited_h += best.hour - earliest_hour
        for site in self._all():
            self._skipped[site] = 0 if site in best.devices else self._skipped.get(site, 0) + 1
        return best

    def forecast(self, site: str, hour: float, now: float) -> float:
        """gCO2e per device-round at ``hour`` as known at ``now``: later hours from a day ago."""
        days_ahead = max(0, -int((now - hour) // 24))  # whole days to step back
        return self._g_per_device(site, hour - 24 * days_ahead)

    def _sites_at(self, hour: float, now: float) -> tuple[RoundPlan, float]:
        """Overdue sites, then the cleanest per device until ``share`` of devices train."""
        every = self._all()
        total = sum(every.values())
        overdue = [s for s in every if self._skipped.get(s, 0) >= self.max_skip]
        rest = sorted(
            (s for s in every if s not in overdue),
            key=lambda s: (self.forecast(s, hour, now), s),
        )
        chosen: dict[str, int] = {s: every[s] for s in overdue}
        for site in rest:
            if sum(chosen.values()) >= self.share * total:
                break
            chosen[site] = every[site]
        cost = sum(n * self.forecast(s, hour, now) for s, n in chosen.items())  # whole sites
        return RoundPlan(hour, chosen), cost


@dataclass
class Oracle(CarbonAware):
    """:class:`CarbonAware` knowing the future intensities: the bound a forecast can reach."""

    def forecast(self, site: str, hour: float, now: float) -> float:
        """The true gCO2e per device-round at ``hour``."""
        del now
        return self._g_per_device(site, hour)


def schedule(
    kind: ScheduleKind,
    sites: Mapping[str, SiteLoad],
    *,
    share: float = 0.6,
    max_skip: int = 2,
    max_defer_h: int = 2,
    defer_budget: float = 0.2,
    seed: int = 0,
) -> Schedule:
    """The schedule ``kind`` over ``sites``."""
    if kind == "fixed":
        return Fixed(sites)
    if kind == "random":
        return RandomSites(sites, share=share, seed=seed)
    if kind == "threshold":
        return Threshold(sites)
    made = Oracle if kind == "oracle" else CarbonAware
    return made(
        sites,
        share=share,
        max_skip=max_skip,
        max_defer_h=max_defer_h,
        defer_budget=defer_budget,
    )


def plan_rounds(chosen: Schedule, rounds: int, start_hour: float = 0.0) -> list[RoundPlan]:
    """``rounds`` plans, each round one hour long, back to back unless the schedule waits."""
    plans: list[RoundPlan] = []
    hour = start_hour
    for index in range(rounds):
        plan = chosen.next_round(index, hour)
        plans.append(plan)
        hour = plan.hour + 1
    return plans
