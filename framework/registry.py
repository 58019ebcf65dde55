"""Component registry: options of each group come from ``loom.<group>`` entry points.

A third-party package adds an option by declaring an entry point whose value is a pydantic
config class (a ``components.base.ComponentConfig`` with ``kind: Literal["<name>"]`` and a
``build()`` method). Nothing is imported until an option is used.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, distributions
from typing import get_args

from components.base import ComponentConfig
from framework.errors import ConfigError

PREFIX = "loom."


@cache
def _all_entry_points() -> dict[str, dict[str, EntryPoint]]:
    found: dict[str, dict[str, EntryPoint]] = {}
    for dist in distributions():  # first on sys.path wins, as for imports
        for ep in dist.entry_points:
            if ep.group.startswith(PREFIX):
                found.setdefault(ep.group[len(PREFIX) :], {}).setdefault(ep.name, ep)
    return found


def refresh() -> None:
    """Forget cached entry points (after installing a plugin in this process)."""
    _all_entry_points.cache_clear()
    config_model.cache_clear()


def groups() -> list[str]:
    """Groups that have at least one registered option."""
    return sorted(_all_entry_points())


def options(group: str) -> list[str]:
    """Names of the registered options of ``group``."""
    return sorted(_all_entry_points().get(group, {}))


def entry_point(group: str, name: str) -> EntryPoint:
    """The entry point of one option; a clear error when there is none."""
    try:
        return _all_entry_points()[group][name]
    except KeyError:
        valid = ", ".join(options(group)) or "none registered"
        raise ConfigError(
            f"{group}.kind={name!r} is not a registered {group} option; choose one of: {valid}"
        ) from None


@cache
def config_model(group: str, name: str) -> type[ComponentConfig]:
    """Load the config class of one option and check that it is well formed."""
    ep = entry_point(group, name)
    try:
        model = ep.load()
    except Exception as exc:  # a broken plugin must not look like a Loom bug
        raise ConfigError(
            f"{group} option {name!r}: cannot load {ep.value} ({type(exc).__name__}: {exc})"
        ) from None
    if not (isinstance(model, type) and issubclass(model, ComponentConfig)):
        raise ConfigError(
            f"{group} option {name!r}: entry point {ep.value} is not a ComponentConfig subclass"
        )
    kinds = get_args(model.model_fields["kind"].annotation)
    if name not in kinds:
        raise ConfigError(
            f"{group} option {name!r}: {ep.value} declares kind {kinds}, "
            f"which does not match its entry-point name"
        )
    return model
