"""The validated run config: the root keys, tracking, and one component config per group.

Each group section is validated by the model its registry entry names (looked up by the
section's ``kind``), so third-party options are validated exactly like built-in ones.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import BaseModel, Field, TypeAdapter, ValidationError, model_validator

from components.base import NOT_AN_EXPERIMENT, ComponentConfig, LoomModel, ScenarioConfig
from components.executor.protocol import ExecutorConfig
from components.sites import Site, site_problems
from components.storage.protocol import StorageConfig
from framework import registry
from framework.errors import ConfigError
from framework.runners import RUNNER_OPTIONS, RunnerConfig, SequentialRunner


class MlflowLocalTracking(LoomModel):
    """MLflow with a local SQLite store (default; nothing to install)."""

    kind: Literal["mlflow_local"] = "mlflow_local"
    uri: str = Field("sqlite:///results/mlflow.db", description="MLflow tracking URI")
    artifact_location: str | None = Field(
        None, description="where new experiments keep artifacts (default <results_dir>/mlartifacts)"
    )


class MlflowServerTracking(LoomModel):
    """A running MLflow tracking server."""

    kind: Literal["mlflow_server"] = "mlflow_server"
    uri: str = Field(pattern=r"^https?://\S+$", description="http(s)://host:port of the server")


TrackingConfig = Annotated[MlflowLocalTracking | MlflowServerTracking, Field(discriminator="kind")]
TRACKING_OPTIONS: dict[str, type[LoomModel]] = {
    "mlflow_local": MlflowLocalTracking,
    "mlflow_server": MlflowServerTracking,
}
# The engine's own groups (options built in, not registered): how runs are recorded and run.
FRAMEWORK_GROUPS: dict[str, dict[str, type[LoomModel]]] = {
    "tracking": TRACKING_OPTIONS,
    "runner": RUNNER_OPTIONS,
}


class RootConfig(LoomModel):
    """Keys at the top of every recipe."""

    recipe: str = Field(
        "no-recipe", description="recipe name (MLflow experiment; no-recipe/<scenario> if none)"
    )
    description: str = Field("", description="what this experiment shows")
    seed: int = Field(0, ge=0, description="seed of every random choice in the run")
    repeats: int = Field(1, ge=1, le=1000, description="trials per job")
    retries: int = Field(0, ge=0, le=20, description="Prefect retries of a failed trial")
    retry_delay_s: float = Field(0.0, ge=0.0, le=3600.0, description="delay between trial retries")
    resume: bool = Field(False, description="skip jobs whose config already has a finished run")
    results_dir: str = Field("results", description="where run folders and reports go")
    tracking: TrackingConfig = Field(default_factory=MlflowLocalTracking)
    runner: RunnerConfig = Field(default_factory=SequentialRunner)
    sites: dict[str, Site] = Field(
        default_factory=dict,
        description="the places a composite experiment spans, by name (components/sites.py)",
    )

    @model_validator(mode="after")
    def _delay_needs_retries(self) -> Self:
        if self.retry_delay_s > 0 and self.retries == 0:
            raise ValueError(
                f"retry_delay_s={self.retry_delay_s} has no effect with retries=0; "
                "set retries ≥ 1 or drop retry_delay_s"
            )
        return self


# Groups every job has, whatever its scenario: each trial is metered and charged.
ENGINE_GROUPS = ("energy", "pricing")
# Groups every job carries that change what it computes (hashed, logged): the fault schedule.
CARRIED_GROUPS = ("faults",)
# Metrics the engine adds to every trial (the summary table and `loom report` show them).
ACCOUNTING_METRICS = ("energy_j", "carbon_g", "charge")
# Keys that do not change what a job computes, so they do not enter its hash (one list for the
# engine and the components: ``components.base.NOT_AN_EXPERIMENT``).
_NOT_HASHED = NOT_AN_EXPERIMENT
assert set(ENGINE_GROUPS) <= set(_NOT_HASHED)


@dataclass(frozen=True)
class JobConfig:
    """A fully validated job: root keys plus one component config per group."""

    root: RootConfig
    groups: Mapping[str, ComponentConfig]
    # The option each group was picked as (``placement`` → ``ec_3_2``, its file name): what
    # users call it. Not hashed: the config it resolved to is.
    options: Mapping[str, str] = field(default_factory=dict)

    @property
    def scenario(self) -> ScenarioConfig:
        """The scenario config (validation guarantees there is one)."""
        scenario = self.groups["scenario"]
        assert isinstance(scenario, ScenarioConfig)
        return scenario

    def needs(self) -> tuple[str, ...]:
        """The groups the job opens: its scenario's, then those its options read."""
        return needed_groups(self.scenario, self.groups)

    @property
    def recipe(self) -> str:
        """The recipe name."""
        return self.root.recipe

    def to_dict(self) -> dict[str, Any]:
        """The resolved config in the layout of the YAML files."""
        out = self.root.model_dump(mode="json")
        for group, cfg in self.groups.items():
            out[group] = cfg.model_dump(mode="json")
        return out

    def flat(self) -> dict[str, str]:
        """Dotted keys → values as strings (MLflow params)."""
        return dict(_flatten(self.to_dict()))

    def config_hash(self) -> str:
        """Hash of what the job computes; equal hashes mean the same experiment."""
        data = {k: v for k, v in self.to_dict().items() if k not in _NOT_HASHED}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def sharing_machine(self, runs_at_once: int) -> JobConfig:
        """The job as one of ``runs_at_once`` running together (``loom run -j N``).

        Each is then charged 1/N of the machine's idle power and TDP, where ``energy.share``
        was left at 1 (the whole machine); otherwise N jobs would each be charged all of it.
        """
        energy = self.groups.get("energy")
        if runs_at_once <= 1 or energy is None or getattr(energy, "share", None) != 1.0:
            return self
        if self.scenario.exclusive:  # it starts only when nothing else runs: the machine is its
            return self
        shared = energy.model_copy(update={"share": 1 / runs_at_once})
        return replace(self, groups={**self.groups, "energy": shared})


def _flatten(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", json.dumps(value) if not isinstance(value, str) else value


def option_model(group: str, name: str) -> type[BaseModel]:
    """The config model of option ``name`` of ``group`` (built-in or registered)."""
    if group in FRAMEWORK_GROUPS:
        options = FRAMEWORK_GROUPS[group]
        if name not in options:
            raise ConfigError(
                f"{group}.kind={name!r} is unknown; choose one of: {', '.join(options)}"
            )
        return options[name]
    return registry.config_model(group, name)


def field_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every dotted key a model accepts, nested models included."""
    paths: list[str] = []
    for name, info in model.model_fields.items():
        paths.append(prefix + name)
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths += field_paths(annotation, f"{prefix}{name}.")
    return paths


def suggest(key: str, candidates: list[str], *, list_siblings: bool = True) -> str:
    """``; did you mean 'x'?`` for the closest candidate, else the valid keys at that level."""
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    if not list_siblings:
        return ""
    parent = key.rsplit(".", 1)[0] + "." if "." in key else ""
    siblings = sorted(
        {c for c in candidates if c.startswith(parent) and "." not in c[len(parent) :]}
    )
    return f"; valid keys here: {', '.join(siblings)}" if siblings else ""


def variant_paths(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str]]:
    """Keys of every variant of the model's nested unions: (dotted key, union key, kind).

    ``fl.topology`` is one of several models told apart by ``kind``; a key such as
    ``fl.topology.height`` is accepted only with the variants that have it.
    """
    found: list[tuple[str, str, str]] = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += variant_paths(annotation, f"{prefix}{name}.")
            continue
        for member in get_args(annotation) if info.discriminator else ():
            if not (isinstance(member, type) and issubclass(member, BaseModel)):
                continue
            kind = str(get_args(member.model_fields["kind"].annotation)[0])
            union = f"{prefix}{name}"
            found += [(path, union, kind) for path in field_paths(member, f"{union}.")]
            found += variant_paths(member, f"{union}.")
    return found


def key_hint(key: str, known: Collection[str], elsewhere: Mapping[str, Sequence[str]]) -> str:
    """What follows ``unknown key 'K'``: where the key is accepted, or the closest one.

    Args:
        key: The dotted key the user wrote.
        known: The keys the chosen options accept.
        elsewhere: Keys only other choices accept → those choices (``executor=dask``).

    """
    if key in elsewhere:
        owners = elsewhere[key]
        verb = "has" if len(owners) == 1 else "have"
        where = key.rsplit(".", 1)[0]
        return f" for this {where}; {', '.join(owners)} {verb} it"
    parent, _, leaf = key.rpartition(".")
    level = f"{parent}." if parent else ""

    def leaves(keys: Iterable[str]) -> list[str]:
        return sorted({k[len(level) :] for k in keys if k.startswith(level)} - {""})

    here = [k for k in leaves(known) if "." not in k]
    there = [k for k in leaves(elsewhere) if "." not in k]
    best_here = difflib.get_close_matches(leaf, here, n=1, cutoff=0.6)
    best_there = difflib.get_close_matches(leaf, there, n=1, cutoff=0.6)

    def score(word: list[str]) -> float:
        return difflib.SequenceMatcher(None, leaf, word[0]).ratio() if word else 0.0

    if best_there and score(best_there) > score(best_here):
        owners = elsewhere[level + best_there[0]]
        return f"; did you mean '{level}{best_there[0]}'? (with {' or '.join(owners)})"
    if best_here:
        return f"; did you mean '{level}{best_here[0]}'?"
    return f"; valid keys here: {', '.join(here)}" if here else ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def accepted_keys(model: type[BaseModel], data: Any, prefix: str = "") -> list[str]:
    """The dotted keys ``model`` accepts for ``data``: its fields and its chosen variants'."""
    known = field_paths(model, prefix)
    for path, union, kind in variant_paths(model, prefix):
        value = data
        for part in union[len(prefix) :].split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, Mapping) and value.get("kind") == kind:
            known.append(path)
    return known


Owners = Callable[[str], Mapping[str, Sequence[str]]]  # group → key → choices that accept it


def describe_errors(
    exc: ValidationError,
    model: type[BaseModel],
    prefix: str = "",
    *,
    data: Any = None,
    owners: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """One line per pydantic error, naming the key, the bad value and what is allowed.

    Args:
        exc: The error.
        model: The model that raised it.
        prefix: Its section's key (``executor.``).
        data: What was validated (so an unknown key is matched against the chosen variants).
        owners: Every key the section's other choices accept → those choices, for the hint.

    """
    known = accepted_keys(model, data, prefix)
    elsewhere = {k: v for k, v in (owners or {}).items() if k not in known}
    lines = []
    for err in exc.errors(include_url=False):
        loc = [str(part) for part in err["loc"]]
        if len(loc) > 1 and loc[0] in FRAMEWORK_GROUPS and loc[1] in FRAMEWORK_GROUPS[loc[0]]:
            del loc[1]  # pydantic names the union member; users name the key
        key = prefix + ".".join(loc)
        key = key.rstrip(".")
        kind = err["type"]
        if kind == "extra_forbidden":
            lines.append(f"unknown key '{key}'{key_hint(key, known, elsewhere)}")
        elif kind == "missing":
            lines.append(f"missing required value '{key}'")
        elif kind == "bool_for_number":  # raised for the section: name the key inside it
            field = err["ctx"]["field"]
            lines.append(
                f"{key + '.' if key else ''}{field}={err['ctx']['value']}: "
                "expected a number, not a boolean"
            )
        else:
            message = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
            if err["loc"]:
                lines.append(f"{key}={_short(err['input'])}: {message}")
            else:  # a cross-field rule of the whole section
                lines.append(f"{key}: {message}" if key else message)
    return lines


def validate_job_config(
    raw: Mapping[str, Any],
    defaults: Mapping[str, Any] | None = None,
    owners: Owners | None = None,
) -> JobConfig:
    """Validate a composed config; raise :class:`ConfigError` listing every problem.

    Args:
        raw: The composed config (recipe and overrides applied).
        defaults: The config composed from ``conf/`` alone. A group the scenario does not use
            must keep its section from here: a setting that nothing reads is refused.
        owners: A group's keys → the options that accept them, so that an unknown key's hint
            can name the option that has it.

    """
    problems: list[str] = []
    root_raw: dict[str, Any] = {}
    sections: dict[str, Any] = {}
    known_groups = set(registry.groups())
    for key, value in raw.items():
        (sections if key in known_groups else root_raw)[key] = value
    if "scenario" not in sections:
        problems.append("missing required value 'scenario' (pick one: scenario=<option>)")

    root: RootConfig | None = None
    try:
        root = RootConfig.model_validate(root_raw)
    except ValidationError as exc:
        for line in describe_errors(exc, RootConfig):
            if line.startswith("unknown key '"):
                key = line.split("'")[1]
                line = f"unknown key '{key}'{suggest(key, sorted(known_groups | set(root_raw)))}"
            problems.append(line)

    if root is not None and root.sites:
        problems += site_problems(root.sites)

    groups: dict[str, ComponentConfig] = {}
    tried: set[str] = set()

    def validate(group: str) -> ComponentConfig | None:
        """The group's section validated (once), or None with its problems noted."""
        section = sections.get(group)
        if group in tried or section is None:
            return groups.get(group)
        tried.add(group)
        if not isinstance(section, Mapping) or "kind" not in section:
            problems.append(
                f"'{group}' must be a mapping with a 'kind' key "
                f"(one of: {', '.join(registry.options(group))})"
            )
            return None
        try:
            model = registry.config_model(group, str(section["kind"]))
            groups[group] = model.model_validate(dict(section))
        except ConfigError as exc:
            problems.extend(exc.problems)
        except ValidationError as exc:
            where = owners(group) if owners is not None else None
            problems.extend(describe_errors(exc, model, f"{group}.", data=section, owners=where))
        return groups.get(group)

    # The scenario, the groups it reads and the ones every job carries come first; another
    # group is validated only where it differs from conf/'s default, which is refused below
    # anyway. So a task run never imports the modules of FL or steering (torch, Colmena).
    scenario = validate("scenario")
    needed: tuple[str, ...] = ()
    if isinstance(scenario, ScenarioConfig):
        needed = needed_groups(scenario, groups, validate)
    for group in (*ENGINE_GROUPS, *CARRIED_GROUPS):
        validate(group)
    for group, section in sections.items():
        if defaults is None or section != defaults.get(group):
            validate(group)

    if isinstance(scenario, ScenarioConfig):
        for group in needed:
            if group not in sections:
                problems.append(
                    f"scenario={scenario.kind} needs a '{group}' component; "
                    f"pick one: {group}=<{'|'.join(registry.options(group))}>"
                )
        sites = root.sites if root is not None and scenario.uses_sites else {}
        if sites and not site_problems(sites):
            problems += storage_at_sites(groups, needed, sites, sections)
            problems += executor_at_sites(groups, needed, sites, sections)
        if all(g in groups for g in needed):
            problems += scenario.check_components(groups)
            used = {g: groups[g] for g in needed}
            for group in needed:
                problems += groups[group].check_with(used)
            # Where the sites could not be read, the components stand nowhere: a fault
            # target checked against them would be a second, wrong error.
            placed = root is not None or "sites" not in root_raw
            if root is not None and root.sites and site_problems(root.sites):
                placed = False
            for group in CARRIED_GROUPS:  # a fault only the run's components can take
                if group in groups and placed:
                    problems += groups[group].check_with({"scenario": scenario, **used})
            if not problems:  # each option as it runs beside the others (never hashed)
                groups.update({g: groups[g].joined(used) for g in needed})
        if defaults is not None:
            problems += _unused_settings(scenario, needed, sections, defaults)
        if root is not None and scenario.uses_sites:
            if not root.sites:
                problems.append(
                    f"scenario={scenario.kind} runs over sites: describe them in the recipe "
                    "(sites: {<name>: {parent, link, carbon, devices, …}}; see "
                    "recipes/composite/)"
                )
            elif not site_problems(root.sites):
                problems += scenario.check_sites(root.sites)
        if root is not None and root.sites and not scenario.uses_sites:
            users = [
                name
                for name in registry.options("scenario")
                if getattr(registry.config_model("scenario", name), "uses_sites", False)
            ]
            problems.append(
                f"sites is set, but scenario={scenario.kind} does not use sites; "
                f"scenarios that do: {', '.join(users) or 'none'}"
            )
    if problems or root is None:
        raise ConfigError(problems, context=f"recipe={raw.get('recipe', 'default')}")
    if isinstance(scenario, ScenarioConfig):
        # A job is only what it uses: unused groups stay out
        # of its params and hash (a storage choice does not change a task benchmark).
        groups = {
            g: c
            for g, c in groups.items()
            if g == "scenario" or g in needed or g in ENGINE_GROUPS or g in CARRIED_GROUPS
        }
    return JobConfig(root, groups)


def storage_at_sites(
    groups: dict[str, ComponentConfig],
    needed: Collection[str],
    sites: Mapping[str, Site],
    sections: Mapping[str, Any],
) -> list[str]:
    """Put the run's storage containers at its sites (``sites.<name>.containers`` each).

    Where the run stores nothing on the fabric, a site's ``containers`` would be ignored:
    one other than the default (1) is refused. Otherwise the storage option's own count and
    link give way to the sites', and setting them too is refused.
    """
    storage = groups.get("storage")
    if "storage" not in needed or storage is None:
        return [
            f"sites.{name}.containers={site.containers}: this run stores nothing on the "
            "storage fabric, so the containers would go unused; store proxies on it "
            "(dataflow=proxystore dataflow.connector=fabric) or drop it"
            for name, site in sites.items()
            if site.containers != Site.model_fields["containers"].default
        ]
    if not isinstance(storage, StorageConfig) or not storage.places_at_sites:
        return [
            f"storage={storage.kind}: its containers are listed, not counted, so they cannot "
            "stand at the sites; choose storage=local or storage=memory"
        ]
    given = sections.get("storage") or {}
    problems = [
        f"storage.{key}={given[key]}: the containers are the sites' (sites.<name>.containers, "
        "behind sites.<name>.link); drop it"
        for key in ("containers", "link")
        if key in given and given[key] != type(storage).model_fields[key].default
    ]
    if not problems:
        from components.storage.container import LinkSpec  # fsspec: only where storage runs

        layout = [
            (name, site.containers, None if site.link is None else LinkSpec(**dict(site.link)))
            for name, site in sites.items()
        ]
        groups["storage"] = storage.at_sites(layout)
    return problems


def executor_at_sites(
    groups: dict[str, ComponentConfig],
    needed: Collection[str],
    sites: Mapping[str, Site],
    sections: Mapping[str, Any],
) -> list[str]:
    """Give each site a pool of the run's executor where some site sets ``workers``.

    A site that sets none gets one worker. The executor's own worker count gives way to the
    sites', and setting it too is refused; so is an executor that cannot build pools by site.
    """
    given = {name: site.workers for name, site in sites.items() if site.workers is not None}
    if not given:
        return []
    executor = groups.get("executor")
    if "executor" not in needed or executor is None:
        return []  # the scenario's own check names what is missing
    if not isinstance(executor, ExecutorConfig) or not executor.places_at_sites():
        return [
            f"sites.<name>.workers is set ({', '.join(f'{k}={v}' for k, v in given.items())}), "
            f"but executor={executor.kind} cannot run a pool per site; choose executor=process, "
            "thread or dask (a local cluster), or drop the sites' workers"
        ]
    field = executor.workers_field
    section = sections.get("executor") or {}
    if field in section and section[field] != type(executor).model_fields[str(field)].default:
        return [
            f"executor.{field}={section[field]}: the pools are the sites' (sites.<name>.workers);"
            " drop it"
        ]
    root = next(name for name, site in sites.items() if site.parent is None)
    order = [root, *(name for name in sites if name != root)]  # tasks with no site: the root's
    groups["executor"] = executor.at_sites([(name, sites[name].workers or 1) for name in order])
    return []


def needed_groups(
    scenario: ScenarioConfig,
    groups: Mapping[str, ComponentConfig],
    validate: Callable[[str], ComponentConfig | None] | None = None,
) -> tuple[str, ...]:
    """The groups a job opens: its scenario's, then any its chosen options read.

    ``dataflow.connector=fabric`` reads ``storage``, ``coding`` and ``placement``, for one.

    Args:
        scenario: The validated scenario.
        groups: The validated groups.
        validate: Validates a group on first use (else ``groups`` must hold them all).

    """
    needed = list(scenario.needs())
    for group in needed:  # grows while it is read: what an added group reads is added too
        option = validate(group) if validate is not None else groups.get(group)
        if option is not None:
            needed += [g for g in option.also_needs() if g not in needed]
    return tuple(needed)


def _unused_settings(
    scenario: ScenarioConfig,
    needed: tuple[str, ...],
    sections: Mapping[str, Any],
    defaults: Mapping[str, Any],
) -> list[str]:
    """One line per group set away from its default that the job does not use."""
    used = set(needed) | set(ENGINE_GROUPS) | set(CARRIED_GROUPS) | {"scenario"}
    lines = []
    for group, section in sections.items():
        if group in used or section == defaults.get(group):
            continue
        changed = _changed_keys(group, section, defaults.get(group))
        users = [
            name
            for name in registry.options("scenario")
            if group in getattr(registry.config_model("scenario", name), "requires", ())
        ]
        users += [
            f"any with {other}={option} {setting}"
            for other in registry.groups()
            for option in registry.options(other)
            if (setting := registry.config_model(other, option).optional_reads.get(group))
        ]
        uses = ", ".join(needed) or "no component group"
        lines.append(
            f"{', '.join(changed)} is set, but scenario={scenario.kind} does not use "
            f"{group} (it uses {uses}); scenarios that do: {', '.join(users) or 'none'}"
        )
    return lines


def _changed_keys(group: str, section: Any, default: Any) -> list[str]:
    """``group=option`` when the option changed, else the dotted keys that differ."""
    if not isinstance(section, Mapping) or not isinstance(default, Mapping):
        return [group]
    if section.get("kind") != default.get("kind"):
        return [f"{group}={section.get('kind')}"]
    flat, base = dict(_flatten(section, f"{group}.")), dict(_flatten(default, f"{group}."))
    return [f"{k}={v}" for k, v in flat.items() if base.get(k) != v] or [group]


def defaults_of(model: type[BaseModel]) -> dict[str, Any]:
    """A model's defaults as plain data, with ``???`` (Hydra's MISSING) for required fields."""
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if info.is_required():
            out[name] = "???"
        else:
            default = info.get_default(call_default_factory=True)
            out[name] = TypeAdapter(Any).dump_python(default, mode="json")
    return out
