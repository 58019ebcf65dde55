"""Every option of a group as users get it: composed from its ``conf/`` file and validated.

Contract suites parametrize over these lists, so an option added to the registry and ``conf/``
joins its group's tests without anyone editing a hand-kept list.
"""

from __future__ import annotations

from typing import Any

import yaml

from components.base import ComponentConfig
from framework import registry
from framework.compose import Composer

COMPOSER = Composer()


def conf_files(group: str) -> list[str]:
    """The options of ``group`` that have a ``conf/`` file (file stems)."""
    return sorted(p.stem for p in (COMPOSER.conf_dir / group).glob("*.yaml"))


def conf_kind(group: str, option: str) -> str:
    """The registry option a ``conf/`` file picks (its ``kind``)."""
    path = COMPOSER.option_file(group, option)
    assert path is not None, f"conf/{group}/{option}.yaml"
    kind: str = yaml.safe_load(path.read_text(encoding="utf-8"))["kind"]
    return kind


def composed(group: str, option: str, *overrides: str) -> ComponentConfig:
    """``group=option`` composed from its file, with ``overrides`` (``group.key=value``)."""
    raw: dict[str, Any] = COMPOSER.compose_raw([f"{group}={option}", *overrides])[group]
    return registry.config_model(group, raw["kind"]).model_validate(raw)
