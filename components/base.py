"""Contracts shared by the engine and every component area.

A component module imports from here, never from ``framework``: the engine builds the
objects below and hands them to components, so data flows one way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, TypeVar, get_args, runtime_checkable

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

T = TypeVar("T")


class LoomModel(BaseModel):
    """Base of every Loom config model: unknown keys are errors, defaults are validated."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, data: Any) -> Any:
        # pydantic reads True as 1 for a number; `scenario.tasks=true` is a mistake, not 1.
        if isinstance(data, Mapping):
            for name, value in data.items():
                field_info = cls.model_fields.get(name) if isinstance(name, str) else None
                if isinstance(value, bool) and field_info is not None:
                    types = _leaf_types(field_info.annotation)
                    if bool not in types and types & {int, float}:
                        raise PydanticCustomError(
                            "bool_for_number",
                            "{field}={value}: expected a number, not a boolean",
                            {"field": name, "value": str(value).lower()},
                        )
        return data


def _leaf_types(annotation: Any) -> set[Any]:
    """The plain types inside an annotation (``int | None`` → {int, NoneType})."""
    args = get_args(annotation)
    if not args:
        return {annotation}
    return set().union(*(_leaf_types(a) for a in args))


class ComponentConfig(LoomModel):
    """Config of one option of a group; ``kind`` names its registry entry.

    Subclasses narrow ``kind`` to a ``Literal`` and implement :meth:`build`, keeping heavy
    imports inside it so that listing and validating configs stays fast.
    """

    kind: str
    # Groups this option reads only under some setting → that setting, for error messages
    # (``{"storage": "connector=fabric"}``); :meth:`also_needs` says when it applies.
    optional_reads: ClassVar[Mapping[str, str]] = {}
    # Fault kinds the built component takes whatever its settings (see takes_faults).
    fault_kinds: ClassVar[frozenset[str]] = frozenset()

    def build(self) -> object:
        """Create the component this config describes."""
        raise NotImplementedError

    def also_needs(self) -> tuple[str, ...]:
        """Other groups this option reads as configured; the job opens and validates them too."""
        return ()

    def takes_faults(self) -> frozenset[str]:
        """Fault kinds (``components.faults``) the built component can take, as configured.

        A fault schedule naming a kind that no component of the run takes is refused at
        validation; a component that takes some implements ``FaultSurface``.
        """
        return self.fault_kinds

    def fault_target_names(self, kind: str) -> list[str] | None:
        """The names a fault of ``kind`` may target, where known before the run; else None.

        A schedule naming a target that no component of the run has is then refused at
        validation rather than when the fault is due.
        """
        del kind
        return None

    def joined(self, groups: Mapping[str, ComponentConfig]) -> Self:
        """The config as it runs beside the job's other groups, for :meth:`build`.

        The default is the config itself. An option that builds from other groups' configs
        (the fabric connector from ``storage``, ``coding`` and ``placement``) keeps them in a
        private attribute here: they are never dumped, so neither hashed nor logged twice.

        Args:
            groups: The validated configs of every group the job uses, by group.

        """
        del groups
        return self

    def check_with(self, groups: Mapping[str, ComponentConfig]) -> list[str]:
        """Problems of this component beside the job's others, found before anything runs.

        Args:
            groups: The validated configs of every group the job's scenario uses, by group.

        Returns:
            One line per problem, each naming the settings and what to choose instead.

        """
        del groups
        return []


class ProgressTask(Protocol):
    """One progress bar."""

    def update(self, completed: int) -> None:
        """Set the number of completed units."""


class ProgressReporter(Protocol):
    """Source of progress bars; the engine passes a rich-backed one, tests a silent one."""

    def bar(self, description: str, total: int | None) -> Any:
        """Return a context manager that yields a :class:`ProgressTask`."""


class _SilentTask:
    def update(self, completed: int) -> None:
        del completed


class SilentProgress:
    """A progress reporter that shows nothing."""

    @contextmanager
    def bar(self, description: str, total: int | None) -> Iterator[ProgressTask]:
        """Yield a bar that ignores updates."""
        del description, total
        yield _SilentTask()


@dataclass
class RunContext:
    """What a scenario receives for one trial.

    Attributes:
        components: Opened components by group name (``executor``, ``storage``, ...).
        seed: The run's seed; every random choice of the trial derives from it.
        trial: Index of this trial within the job (0-based).
        run_dir: Folder for this trial's records and plots; logged as artifacts.
        progress: Where to show progress bars.
        metrics: Metrics recorded so far (name → value).
        watts_per_thread: Joules per CPU-second of a task, from the run's energy meter
            (its machine profile's dynamic power per busy thread); None when not metered.
        sites: The recipe's sites by name (``components.sites.Site``), for scenarios that
            use them.

    """

    components: Mapping[str, object]
    seed: int
    trial: int
    run_dir: Path
    progress: ProgressReporter = field(default_factory=SilentProgress)
    metrics: dict[str, float] = field(default_factory=dict)
    watts_per_thread: float | None = None
    sites: Mapping[str, Any] = field(default_factory=dict)

    def task_energy_j(self, cpu_s: float) -> float | None:
        """A task's dynamic energy from its CPU time (None when the run is not metered)."""
        return None if self.watts_per_thread is None else cpu_s * self.watts_per_thread

    def component(self, group: str, expected: type[T]) -> T:
        """Return the opened component of ``group``, checked against a protocol or class."""
        try:
            value = self.components[group]
        except KeyError:
            raise LookupError(
                f"this scenario needs a '{group}' component but the run has none"
            ) from None
        if not isinstance(value, expected):
            raise TypeError(
                f"component '{group}' is a {type(value).__name__}, not a {expected.__name__}"
            )
        return value

    def log_metric(self, name: str, value: float) -> None:
        """Record one scalar metric of this trial."""
        self.metrics[name] = float(value)

    def log_metrics(self, values: Mapping[str, float]) -> None:
        """Record several scalar metrics of this trial."""
        for name, value in values.items():
            self.log_metric(name, value)

    def write_records(self, name: str, rows: Iterable[Mapping[str, Any]]) -> Path:
        """Write per-item records as JSON lines to ``<run_dir>/<name>.jsonl``."""
        path = self.run_dir / f"{name}.jsonl"
        with path.open("w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, separators=(",", ":")))
                out.write("\n")
        return path


@dataclass(frozen=True)
class FinishedJob:
    """A finished job as ``loom report`` hands it to a scenario's comparison.

    Attributes:
        params: The job's flattened config, dotted keys to the strings MLflow keeps.
        metrics: Its metrics (means over trials).
        options: The option each component group was picked as (``placement`` → ``ec_3_2``,
            the option's file name), where the run recorded it.

    """

    params: Mapping[str, str]
    metrics: Mapping[str, float]
    options: Mapping[str, str] = field(default_factory=dict)


# Root keys and groups that say how a job is run, recorded, metered and charged, not what it
# computes: they stay out of its config hash, and never tell two experiments apart.
NOT_AN_EXPERIMENT = (
    "resume",
    "tracking",
    "runner",
    "results_dir",
    "description",
    "energy",
    "pricing",
)


def is_bookkeeping(key: str) -> bool:
    """Whether a dotted config key (``runner.workers``) is in :data:`NOT_AN_EXPERIMENT`."""
    return key.split(".", 1)[0] in NOT_AN_EXPERIMENT


@runtime_checkable
class Scenario(Protocol):
    """An experiment: runs one trial and records metrics, records and plots into the context."""

    def run(self, ctx: RunContext) -> None:
        """Run one trial."""


class ScenarioConfig(ComponentConfig):
    """Config of a scenario.

    ``requires`` names the component groups it needs opened; ``headline_metrics`` are the
    metrics the CLI's summary table shows. An ``exclusive`` scenario runs alone, whatever the
    runner: it measures the machine (timings, energy) or holds resources that others need.
    """

    requires: ClassVar[tuple[str, ...]] = ()
    headline_metrics: ClassVar[tuple[str, ...]] = ()
    exclusive: ClassVar[bool] = False
    # Whether the scenario reads the recipe's ``sites`` (elsewhere they are refused).
    uses_sites: ClassVar[bool] = False

    def needs(self) -> tuple[str, ...]:
        """The groups this config needs opened: ``requires``, plus any its settings call for."""
        return self.requires

    def build(self) -> Scenario:
        """Create the scenario."""
        raise NotImplementedError

    def check_components(self, groups: Mapping[str, ComponentConfig]) -> list[str]:
        """Problems between this scenario's component configs (one line each; none: ``[]``).

        Each group is validated alone; a rule that spans groups (a strategy naming an endpoint
        the endpoints group lacks) goes here, so that it too is refused before anything runs.
        """
        del groups
        return []

    def check_sites(self, sites: Mapping[str, Any]) -> list[str]:
        """Problems of the recipe's (validated) sites for this scenario, if it uses them."""
        del sites
        return []

    @classmethod
    def comparison(cls, runs: list[FinishedJob]) -> tuple[str, list[dict[str, Any]]] | None:
        """An extra table for ``loom report``: a title and its rows, or None.

        Args:
            runs: The recipe's finished jobs (the latest run of each config).

        """
        del runs
        return None


def dotted_name(kind: type) -> str:
    """``module.QualName`` of a class: how a config names a class another process rebuilds."""
    return f"{kind.__module__}.{kind.__qualname__}"


def from_dotted_name(name: str) -> Any:
    """The class :func:`dotted_name` named (imported now)."""
    import importlib

    module, _, attribute = name.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


def require_packages(scenario: str, modules: tuple[str, ...]) -> None:
    """Fail with the install command when an app's packages are missing."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ValueError(
            f"scenario={scenario} needs {', '.join(missing)}: pip install -e '.[apps]'"
        )
