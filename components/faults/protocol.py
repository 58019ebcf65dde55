"""The ``faults`` group: a seeded schedule of faults that any run can carry.

A fault has a kind, a time (``at_s``, ``at_fraction`` of the trial's progress, or ``every_s``),
a duration and targets (``one``, ``minority``, ``all``, or names). Each kind acts on the
component that owns its surface: the storage network's containers and links, the event
fabric's broker, the executor's workers, the task path's attempts. A component that can take
faults says which (:meth:`~components.base.ComponentConfig.takes_faults` on its config, so a
schedule is refused at validation) and implements :class:`FaultSurface` (so it is injected).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, Self, get_args, runtime_checkable

from pydantic import Field, model_validator

from components.base import ComponentConfig, LoomModel

FaultKind = Literal[
    "container_down",
    "container_slow",
    "container_corrupt",
    "link_slow",
    "link_partition",
    "broker_kill",
    "broker_restart",
    "broker_pause",
    "worker_kill",
    "process_pause",
    "task_failure",
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)

# Who can take each kind: the options named when a run cannot (refusals name these).
TAKEN_BY: Mapping[str, str] = {
    "container_down": "storage=<local|memory|s3|mixed> (the storage network, fabric connector)",
    "container_slow": "storage=<local|memory|s3|mixed>",
    "container_corrupt": "storage=<local|memory|s3|mixed>",
    "link_slow": "storage with emulated links (storage.link or a container's link)",
    "link_partition": "storage with emulated links (storage.link or a container's link)",
    "broker_kill": "events=embedded (the broker Loom runs)",
    "broker_restart": "events=embedded",
    "broker_pause": "events=embedded",
    "worker_kill": "executor=process or executor=dask (a local cluster)",
    "process_pause": "executor=process or executor=dask (a local cluster)",
    "task_failure": "scenarios that run tasks on Loom's task path (synthetic, the TaPS apps, "
    "federated)",
}
# Kinds that happen once and are over: a duration means nothing for them.
INSTANT_KINDS = frozenset({"container_corrupt", "worker_kill"})
SLOW_KINDS = frozenset({"container_slow", "link_slow"})

Targets = Literal["one", "minority", "all"] | list[str]


class Fault(LoomModel):
    """One entry of a fault schedule."""

    kind: FaultKind = Field(description="what fails: " + ", ".join(FAULT_KINDS))
    at_s: float | None = Field(
        None, ge=0, le=86_400, description="seconds after the trial starts (default 0)"
    )
    at_fraction: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="when this fraction of the trial's work is done (its first progress bar)",
    )
    every_s: float | None = Field(
        None, gt=0, le=86_400, description="again every this many seconds (from at_s)"
    )
    times: int | None = Field(
        None, ge=1, le=10_000, description="at most this many times with every_s (default: no cap)"
    )
    duration_s: float | None = Field(
        None,
        ge=0,
        le=86_400,
        description="how long it lasts before it heals; null: until the trial ends "
        "(broker_kill, broker_restart: the downtime, default 0)",
    )
    targets: Targets = Field(
        "one", description="one | minority | all, or a list of target names (seeded choice)"
    )
    rate: float | None = Field(
        None, gt=0, le=1, description="task_failure: fraction of task attempts that fail"
    )
    factor: float | None = Field(
        None, gt=1, le=10_000, description="container_slow, link_slow: times slower (default 10)"
    )
    raises: Literal["exception", "zero_division", "import_error"] | None = Field(
        None, description="task_failure: what a failing attempt raises (default exception)"
    )
    chunks: int | None = Field(
        None, ge=1, le=1_000_000, description="container_corrupt: stored chunks to flip (default 1)"
    )

    @model_validator(mode="after")
    def _settings_of_its_kind(self) -> Self:
        problems = []
        if self.at_fraction is not None and (self.at_s is not None or self.every_s is not None):
            problems.append("at_fraction cannot be combined with at_s or every_s")
        if self.times is not None and self.every_s is None:
            problems.append("times needs every_s")
        if self.kind in INSTANT_KINDS and self.duration_s is not None:
            problems.append(f"duration_s means nothing for {self.kind}, which is instantaneous")
        if (self.rate is None) == (self.kind == "task_failure"):
            problems.append(
                "task_failure needs rate" if self.rate is None else "rate is for task_failure only"
            )
        if self.factor is not None and self.kind not in SLOW_KINDS:
            problems.append(f"factor is for {' and '.join(sorted(SLOW_KINDS))} only")
        if self.raises is not None and self.kind != "task_failure":
            problems.append("raises is for task_failure only")
        if self.chunks is not None and self.kind != "container_corrupt":
            problems.append("chunks is for container_corrupt only")
        if self.kind == "task_failure" and self.targets != "one":
            problems.append("task_failure picks attempts by rate, not targets: leave targets out")
        if isinstance(self.targets, list) and not self.targets:
            problems.append("targets is an empty list")
        if problems:
            raise ValueError(f"kind={self.kind}: " + "; ".join(problems))
        return self

    @property
    def slowdown(self) -> float:
        """Times slower for the slow kinds."""
        return 10.0 if self.factor is None else self.factor

    @property
    def first_s(self) -> float:
        """Seconds after the start of the first occurrence (``at_fraction`` aside)."""
        return 0.0 if self.at_s is None else self.at_s


@dataclass
class Injected:
    """What a surface did for one fault.

    Attributes:
        detail: What was done, for the records (``SIGKILL pid 123``).
        heal: Undo it (bring the container up, restart the broker); returns the seconds
            the recovery itself took, or None. None: nothing to undo.
        recover_s: Where the surface recovered at once (a broker restarted with no
            downtime asked), the seconds that took.

    """

    detail: str
    heal: Callable[[], float | None] | None = None
    recover_s: float | None = None


@runtime_checkable
class FaultSurface(Protocol):
    """A component that faults can act on (a storage network, a broker, a worker pool)."""

    def fault_targets(self, kind: str) -> list[str]:
        """The names ``kind`` can hit here now (``[]``: this component does not take it)."""

    def inject(self, kind: str, targets: Sequence[str], fault: Fault) -> Injected:
        """Make ``kind`` happen to ``targets`` (names from :meth:`fault_targets`)."""


class FaultsConfig(ComponentConfig):
    """Base of the ``faults`` group's configs."""

    def entries(self) -> list[Fault]:
        """The faults this config injects."""
        return []

    def check_with(self, groups: Mapping[str, ComponentConfig]) -> list[str]:
        """A fault no component of the run can take is refused, naming what could take it."""
        lines = []
        for index, fault in enumerate(self.entries()):
            takers = [g for g, c in groups.items() if fault.kind in c.takes_faults()]
            if takers:
                lines += _unknown_targets(index, fault, [groups[g] for g in takers])
                continue
            uses = ", ".join(f"{g}={c.kind}" for g, c in groups.items() if g != "faults")
            lines.append(
                f"faults.schedule[{index}].kind={fault.kind}: no component of this run can "
                f"take it (it uses {uses}); it needs {TAKEN_BY[fault.kind]}"
            )
        return lines


def _unknown_targets(index: int, fault: Fault, takers: list[ComponentConfig]) -> list[str]:
    """Named targets that no taker has, where every taker knows its names before the run."""
    if not isinstance(fault.targets, list):
        return []
    known: list[str] = []
    for config in takers:
        names = config.fault_target_names(fault.kind)
        if names is None:  # known only once built: the injector checks them then
            return []
        known += names
    unknown = [t for t in fault.targets if t not in known]
    if not unknown:
        return []
    return [
        f"faults.schedule[{index}].targets: {fault.kind} cannot target {', '.join(unknown)} "
        f"in this run; it may target: {', '.join(known) or 'none'}"
    ]
