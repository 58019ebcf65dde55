"""Hydra composition: ``conf/`` + ``recipes/`` + overrides → validated :class:`JobConfig`.

Hydra's own errors are turned into one line each that names the key or option, the bad value
and what is allowed. A recipe is ``recipe=<name>`` (``recipes/<name>.yaml``) or
``recipe=<path to a .yaml file>``.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from components.sites import Site
from framework import registry
from framework.config import (
    FRAMEWORK_GROUPS,
    JobConfig,
    defaults_of,
    field_paths,
    key_hint,
    option_model,
    suggest,
    validate_job_config,
    variant_paths,
)
from framework.errors import ConfigError

CONFIG_NAME = "config"
# A run without a recipe records to experiment ``no-recipe/<scenario>``.
NO_RECIPE = "no-recipe"


def project_root() -> Path:
    """Find the folder holding ``conf/`` and ``recipes/``.

    Looks at ``$LOOM_ROOT``, then the cwd and its parents, else the checkout this package was
    installed from.
    """
    if env := os.environ.get("LOOM_ROOT"):
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "conf" / f"{CONFIG_NAME}.yaml").is_file():
            return folder
    return Path(__file__).resolve().parents[1]


class Composer:
    """Composes and validates run configs from a project folder."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or project_root()
        self.conf_dir = self.root / "conf"
        self.recipes_dir = self.root / "recipes"
        self._defaults: dict[str, Any] | None = None
        self._owners: dict[str, dict[str, list[str]]] = {}
        if not (self.conf_dir / f"{CONFIG_NAME}.yaml").is_file():
            raise ConfigError(
                f"no conf/{CONFIG_NAME}.yaml under {self.root}; run loom from a "
                "Loom project folder or set LOOM_ROOT"
            )

    # ----- the menu -------------------------------------------------------------------
    def groups(self) -> list[str]:
        """Config groups: folders of ``conf/`` plus registry groups."""
        folders = {p.name for p in self.conf_dir.iterdir() if p.is_dir() and p.name != "recipe"}
        return sorted(folders | set(registry.groups()))

    def options(self, group: str) -> list[str]:
        """Options of a group: its YAML files plus registered options without a file."""
        if group == "recipe":
            return self.recipes()
        files = {p.stem for p in (self.conf_dir / group).glob("*.yaml")}
        framework = FRAMEWORK_GROUPS.get(group)
        builtin = set(framework) if framework is not None else set(registry.options(group))
        return sorted(files | builtin)

    def option_file(self, group: str, option: str) -> Path | None:
        """The YAML file of an option, if it has one."""
        path = self.conf_dir / group / f"{option}.yaml"
        return path if path.is_file() else None

    def recipes(self) -> list[str]:
        """Recipe names, e.g. ``quickstart`` or ``taps/failures``."""
        return sorted(
            str(p.relative_to(self.recipes_dir).with_suffix(""))
            for p in self.recipes_dir.rglob("*.yaml")
        )

    # ----- composing ------------------------------------------------------------------
    def declared_sweep(self, overrides: list[str]) -> dict[str, str]:
        """The sweep a recipe declares (Hydra's ``hydra.sweeper.params``), key → values."""
        name, _ = self._recipe_override(overrides)
        if not name:
            return {}
        path = Path(name) if name.endswith((".yaml", ".yml")) else self.recipes_dir / f"{name}.yaml"
        if not path.is_file() and not name.endswith((".yaml", ".yml")):
            return {}  # no such recipe: composing says so, with the names there are
        data = _check_recipe_file(path)
        hydra = data.get("hydra") or {}
        sweeper = hydra.get("sweeper") if isinstance(hydra, dict) else None
        params = sweeper.get("params") if isinstance(sweeper, dict) else None
        if params is not None and not isinstance(params, dict):
            raise ConfigError(
                f"recipe file {path}: hydra.sweeper.params must map keys to values "
                f"(a.b: 1,2), not a {type(params).__name__}"
            )
        return {str(k): str(v) for k, v in (params or {}).items()}

    def recipe_sweep(self, overrides: list[str]) -> list[str]:
        """Sweep overrides a recipe declares, less the keys the command line sets itself.

        So ``placement=drex_lb`` on the command line narrows a recipe's sweep over placers
        to that one.
        """
        _, rest = self._recipe_override(overrides)
        given = {item.split("=", 1)[0].lstrip("+~") for item in rest}
        declared = self.declared_sweep(overrides)
        return [f"{key}={value}" for key, value in declared.items() if key not in given]

    def expand(self, overrides: list[str], multirun: bool) -> list[list[str]]:
        """Split sweep overrides (``a=1,2 b=x,y``) into one override list per job.

        A recipe that declares a sweep (``hydra.sweeper.params``) always runs as one.
        """
        if self.declared_sweep(overrides):
            overrides, multirun = [*overrides, *self.recipe_sweep(overrides)], True
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from hydra.errors import HydraException

        try:
            parsed = OverridesParser.create().parse_overrides(overrides)
        except HydraException as exc:
            raise ConfigError(_parse_problem(str(exc), overrides)) from None
        sweeps = [o.input_line for o in parsed if o.is_sweep_override()]
        if not multirun:
            if sweeps:
                raise ConfigError(f"{sweeps[0]} lists several values; add -m to sweep them")
            return [overrides]
        # One job per combination of the swept values, in the order Hydra's sweeper gives.
        choices: list[list[str]] = []
        for override in parsed:
            key = override.get_key_element()
            if not override.is_sweep_override():
                choices.append([f"{key}={override.get_value_element_as_str()}"])
            elif override.is_discrete_sweep():
                choices.append([f"{key}={value}" for value in override.sweep_string_iterator()])
            else:
                raise ConfigError(
                    f"{override.input_line}: an interval sweeps no fixed values; list them "
                    "(a=1,2,3) or use range(start, stop, step)"
                )
        return [list(job) for job in itertools.product(*choices)]

    def compose(self, overrides: list[str]) -> JobConfig:
        """Compose one job's config and validate it."""
        raw, options = self._compose(overrides)
        config = validate_job_config(raw, self.defaults(), self.key_owners)
        return replace(config, options={g: options[g] for g in config.groups if g in options})

    def defaults(self) -> dict[str, Any]:
        """The config ``conf/`` composes with no recipe and no override (computed once)."""
        if self._defaults is None:
            self._defaults = self._compose([])[0]
        return self._defaults

    def compose_raw(self, overrides: list[str]) -> dict[str, Any]:
        """Compose one job's config as plain data (not yet validated)."""
        return self._compose(overrides)[0]

    def _compose(self, overrides: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
        """The composed config as plain data, and the option chosen for each group."""
        from omegaconf import OmegaConf, open_dict
        from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

        name, overrides = self._recipe_override(overrides)
        with self._recipe_search_path(name, overrides) as (recipe, final_overrides):
            cfg = self._hydra_compose(final_overrides, with_hydra=True)
        choices = cfg.hydra.runtime.choices
        options = {str(g): str(o) for g, o in choices.items() if o is not None and "/" not in g}
        with open_dict(cfg):
            del cfg["hydra"]
        try:
            raw = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
        except MissingMandatoryValue as exc:
            raise ConfigError(
                f"missing required value '{exc.full_key}' (set it: {exc.full_key}=...)",
                context=f"recipe={recipe}",
            ) from None
        except OmegaConfBaseException as exc:
            key = getattr(exc, "full_key", "") or "?"
            raise ConfigError(f"{key}: {str(exc).splitlines()[0]}") from None
        assert isinstance(raw, dict)
        composed: dict[str, Any] = {str(k): v for k, v in raw.items()}
        if recipe == NO_RECIPE:  # its own experiment per scenario, apart from MLflow's Default
            scenario = composed.get("scenario")
            kind = scenario.get("kind") if isinstance(scenario, dict) else None
            recipe = f"{NO_RECIPE}/{kind or 'unknown'}"
        composed["recipe"] = recipe
        return composed, options

    # ----- internals --------------------------------------------------------------------
    @staticmethod
    def _recipe_override(overrides: list[str]) -> tuple[str | None, list[str]]:
        rest, name = [], None
        for item in overrides:
            if item.startswith("recipe="):
                name = item.split("=", 1)[1]
            else:
                rest.append(item)
        return name, rest

    @contextmanager
    def _recipe_search_path(
        self, name: str | None, overrides: list[str]
    ) -> Iterator[tuple[str, list[str]]]:
        if not name:
            yield NO_RECIPE, overrides
            return
        as_path = Path(name).expanduser()
        if name.endswith((".yaml", ".yml")):
            _check_recipe_file(as_path)
            # A recipe outside the project: expose it to Hydra as recipe/<stem>.
            tmp = Path(tempfile.mkdtemp(prefix="loom-recipe-"))
            try:
                (tmp / "recipe").mkdir()
                shutil.copyfile(as_path, tmp / "recipe" / f"{as_path.stem}.yaml")
                yield (
                    as_path.stem,
                    [f"recipe={as_path.stem}", f"hydra.searchpath=[file://{tmp}]", *overrides],
                )
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            return
        path = self.recipes_dir / f"{name}.yaml"
        if not path.is_file():
            raise ConfigError(
                f"recipe={name}: no such recipe"
                f"{suggest(name, self.recipes(), list_siblings=False)}"
                f" (available: {', '.join(self.recipes())}; or give a .yaml path)"
            )
        _check_recipe_file(path)
        yield name, [f"recipe={name}", *overrides]

    def _hydra_compose(self, overrides: list[str], *, with_hydra: bool = False) -> Any:
        from hydra import compose, initialize_config_dir
        from hydra.errors import HydraException, MissingConfigException

        self._store_registered_defaults()
        try:
            with initialize_config_dir(
                version_base="1.3", config_dir=str(self.conf_dir), job_name="loom"
            ):
                return compose(
                    config_name=CONFIG_NAME, overrides=overrides, return_hydra_config=with_hydra
                )
        except MissingConfigException as exc:
            raise ConfigError(self._missing_option_problem(str(exc))) from None
        except HydraException as exc:
            raise ConfigError(self._composition_problem(str(exc), overrides)) from None

    def _store_registered_defaults(self) -> None:
        """Offer registered options that have no YAML file, with their model's defaults."""
        from hydra.core.config_store import ConfigStore

        store = ConfigStore.instance()
        for group in registry.groups():
            for option in registry.options(group):
                if self.option_file(group, option) is None:
                    model = registry.config_model(group, option)
                    store.store(group=group, name=option, node=defaults_of(model))

    def _missing_option_problem(self, message: str) -> str:
        found = re.search(r"Could not (?:find|load) '([^']+)'", message)
        if not found:
            return message.splitlines()[0]
        group, _, option = found.group(1).rpartition("/")
        if group == "recipe":
            return f"recipe={option}: no such recipe (available: {', '.join(self.recipes())})"
        if not group:
            return f"no config group or option '{option}'"
        valid = self.options(group)
        if not valid:
            return f"'{group}' is not a config group; groups: {', '.join(self.groups())}"
        return (
            f"{group}={option}: no such option"
            f"{suggest(option, valid, list_siblings=False)}"
            f" (choose one of: {', '.join(valid)})"
        )

    def _composition_problem(self, message: str, overrides: list[str]) -> str:
        found = re.search(r"Could not override '([^']+)'", message)
        if found:
            key = found.group(1)
            given = next((o for o in overrides if o.split("=", 1)[0] == key), "")
            if given.partition("=")[2].lstrip().startswith("{"):
                # Hydra merges a mapping into the entry (even with '++'): new keys are
                # refused. Deleting the entry first and adding the mapping replaces it.
                return (
                    f"{key}: a mapping with other keys merges into the entry; to replace "
                    f"it, delete it first: ~{key} '+{given}'"
                )
            parts = key.lstrip("+~").split(".")
            if len(parts) == 3 and parts[0] == "sites" and parts[2] in Site.model_fields:
                value = given.partition("=")[2]
                return (
                    f"{key}: the recipe does not set {parts[2]} for site {parts[1]}; add it "
                    f"with '+{key}={value}'"
                )
            others = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != key]
            known = _keys(self._hydra_compose(others)) if others != overrides else []
            bare = key.lstrip("+~")
            owners = self.key_owners(bare.split(".")[0])
            elsewhere = {k: v for k, v in owners.items() if k not in known}
            return f"unknown key '{bare}'{key_hint(bare, known, elsewhere)}"
        if "Error parsing override" in message or "mismatched input" in message:
            return _parse_problem(message, overrides)
        return message.strip().splitlines()[0]

    def key_owners(self, group: str) -> dict[str, list[str]]:
        """Every key some option of ``group`` accepts → the choices that accept it.

        A choice is ``group=option``, or for a variant of a nested union its sub-group
        (``fl/topology=balanced``) or ``kind`` (``scenario.failures.kind=...``).
        """
        if group in self._owners:
            return self._owners[group]
        owners: dict[str, list[str]] = {}
        if group in self.groups() and group != "recipe":
            for option in self.options(group):
                file = self.option_file(group, option)
                body = yaml.safe_load(file.read_text()) if file is not None else None
                kind = body.get("kind", option) if isinstance(body, dict) else option
                try:
                    model = option_model(group, str(kind))
                except (ConfigError, LookupError):
                    continue  # a conf/ file without a model: nothing to offer
                for path in field_paths(model, f"{group}."):
                    owners.setdefault(path, []).append(f"{group}={option}")
                for path, union, variant in variant_paths(model, f"{group}."):
                    sub = union.replace(".", "/")
                    known = (self.conf_dir / sub / f"{variant}.yaml").is_file()
                    label = f"{sub}={variant}" if known else f"{union}.kind={variant}"
                    if label not in owners.setdefault(path, []):
                        owners[path].append(label)
        self._owners[group] = owners
        return owners


def _keys(cfg: Any, prefix: str = "") -> list[str]:
    out: list[str] = []
    if isinstance(cfg, Mapping) or hasattr(cfg, "items"):
        for key, value in cfg.items():
            out.append(f"{prefix}{key}")
            if hasattr(value, "items"):
                out += _keys(value, f"{prefix}{key}.")
    return out


def _parse_problem(message: str, overrides: list[str]) -> str:
    found = re.search(r"Error parsing override '([^']*)'", message)
    bad = found.group(1) if found else " ".join(overrides)
    return f"cannot parse override '{bad}': expected key=value (e.g. scenario.tasks=100)"


PACKAGE_HEADER = "# @package _global_"


def _check_recipe_file(path: Path) -> dict[str, Any]:
    """A recipe file's content, or a clear error: missing, not YAML, not a mapping, empty.

    A recipe sets keys of every group from the top (``scenario.tasks``, ``executor``), so it
    must say ``# @package _global_``; without it Hydra would nest every key under ``recipe``.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"recipe file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"recipe file {path} cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"recipe file {path} is not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"recipe file {path}{where}: not valid YAML: {problem}") from None
    if data is None or data == {}:
        raise ConfigError(
            f"recipe file {path} is empty: a recipe chooses options or sets keys "
            "(see recipes/quickstart.yaml); to run the defaults, give no recipe"
        )
    if not isinstance(data, dict):
        raise ConfigError(
            f"recipe file {path}: a recipe must be a mapping of keys (scenario: ..., "
            f"defaults: [...]), not a {type(data).__name__}"
        )
    # Hydra reads a header from the comments before the first key, blank lines skipped.
    lines = (line.strip() for line in text.splitlines() if line.strip())
    header = itertools.takewhile(lambda line: line.startswith("#"), lines)
    if not any(line.split() == PACKAGE_HEADER.split() for line in header):
        raise ConfigError(
            f"recipe file {path}:1: add the line '{PACKAGE_HEADER}' at the top: a recipe "
            "sets keys of every group from the top, and without it Hydra nests them under "
            "'recipe'"
        )
    return data
