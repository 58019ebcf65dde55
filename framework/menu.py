"""The menu: each group's options and their fields, read from the models that validate them.

``loom list`` prints it, and the documentation's reference pages are generated from it
(``docs/gen_pages.py``), so the two cannot drift from each other or from the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from framework.compose import Composer
from framework.config import option_model


@dataclass(frozen=True)
class OptionField:
    """One key of an option: its default (as the option's file sets it) and what it means."""

    key: str
    default: str
    description: str


@dataclass(frozen=True)
class Option:
    """One choice of a group, ``conf/<group>/<name>.yaml``, built by the model of its ``kind``."""

    name: str
    kind: str
    summary: str
    doc: str
    model: str
    fields: tuple[OptionField, ...]


@dataclass(frozen=True)
class Group:
    """A config group: its default option and every option."""

    name: str
    default: str
    options: tuple[Option, ...]


def default_options(composer: Composer) -> dict[str, str]:
    """The option each group takes when nothing picks one (``conf/config.yaml``)."""
    data = yaml.safe_load((composer.conf_dir / "config.yaml").read_text())
    defaults: dict[str, str] = {}
    for entry in data.get("defaults", []):
        if isinstance(entry, dict):
            for key, value in entry.items():
                defaults[str(key)] = str(value)
    return defaults


def show(value: Any) -> str:
    """A default as a user would type it (``null``, ``a=1, b=2``)."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={show(v)}" for k, v in value.items())
    return "null" if value is None else str(value)


def menu_group(composer: Composer, group: str, default: str = "none") -> Group:
    """Every option of ``group`` with its fields, in ``conf/`` order."""
    options = []
    for name in composer.options(group):
        path = composer.option_file(group, name)
        values = yaml.safe_load(path.read_text()) if path else {}
        kind = str(values.get("kind", name))
        model = option_model(group, kind)
        doc = (model.__doc__ or "").strip()
        fields = []
        for key, info in model.model_fields.items():
            if key == "kind":
                continue
            if key in values:
                value = values[key]
            elif info.is_required():
                value = "(required)"
            else:
                value = info.get_default(call_default_factory=True)
                value = value.model_dump() if hasattr(value, "model_dump") else value
            fields.append(OptionField(key, show(value), info.description or ""))
        options.append(
            Option(
                name,
                kind,
                doc.splitlines()[0] if doc else "",
                doc,
                f"{model.__module__}.{model.__qualname__}",
                tuple(fields),
            )
        )
    return Group(group, default, tuple(options))
