"""What both endpoints options share: a site's parameters and checks, the task order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

import numpy as np
from pydantic import Field, model_validator

from components.base import LoomModel
from components.endpoints import _greenfaas as greenfaas
from components.endpoints.protocol import ProfileCell, Site

Table = dict[str, dict[str, ProfileCell]]


class SiteConfig(LoomModel):
    """One endpoint's parameters (GreenFaaS's ``caws.Endpoint``)."""

    slots: int = Field(ge=1, le=100_000, description="workers per block")
    min_blocks: int = Field(0, ge=0, le=1000, description="blocks always up (1: always on)")
    max_blocks: int = Field(1, ge=1, le=1000, description="most blocks it provisions")
    parallelism: float = Field(0.5, gt=0, le=1, description="target slots per task")
    static_w: float = Field(0.0, ge=0, le=1e6, description="static power of a block (W)")
    shutdown_s: float = Field(10.0, ge=0, le=86_400, description="idle time before shutdown")
    cold_start_s: float | None = Field(
        None, ge=0, le=86_400, description="first task to block ready (default: the group's)"
    )
    planning_slots: int | None = Field(
        None, ge=1, le=100_000, description="slots the planner believes it has (default: slots)"
    )

    @model_validator(mode="after")
    def _blocks_in_order(self) -> Self:
        if self.min_blocks > self.max_blocks:
            raise ValueError(f"min_blocks={self.min_blocks} is above max_blocks={self.max_blocks}")
        return self

    def site(
        self, name: str, cold_start_s: float, static_scale: float = 1.0, *, planned: bool = False
    ) -> Site:
        """The endpoint as the ground truth sees it, or (``planned``) as the planner does."""
        cold = self.cold_start_s if self.cold_start_s is not None else cold_start_s
        slots = self.planning_slots if planned and self.planning_slots else self.slots
        return Site(
            name,
            int(slots or 1),
            self.min_blocks,
            self.max_blocks,
            self.parallelism,
            self.static_w * static_scale,
            self.shutdown_s,
            cold,
        )


def greenfaas_sites() -> dict[str, SiteConfig]:
    return {
        name: SiteConfig(
            slots=slots,
            min_blocks=min_blocks,
            static_w=static_w,
            planning_slots=greenfaas.PLANNING_SLOTS.get(name),
        )
        for name, (slots, min_blocks, static_w) in greenfaas.SITES.items()
    }


def check_table(
    table: Mapping[str, Mapping[str, Any]],
    sites: list[str],
    known: set[str] | None,
    functions: list[str],
) -> None:
    """Every function known and every (function, endpoint) pair present."""
    if known is not None:
        unknown = sorted(set(table) - known)
        if unknown:
            raise ValueError(
                f"profiles: unknown function {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
    for function in functions:
        row = table.get(function, {})
        strangers = sorted(set(row) - set(sites))
        if strangers:
            raise ValueError(
                f"profiles.{function}: {', '.join(map(repr, strangers))} is not an endpoint "
                f"(endpoints: {', '.join(sites)})"
            )
        missing = [s for s in sites if s not in row]
        if missing:
            raise ValueError(
                f"profiles.{function}: no profile on {', '.join(missing)} "
                "(every function needs one on every endpoint)"
            )


ORDERS = ("function_major", "interleaved", "shuffled")


def task_order(functions: int, per_function: int, order: str, seed: int) -> np.ndarray:
    """Function index of each task in submission order."""
    major = np.repeat(np.arange(functions, dtype=np.int64), per_function)
    if order == "function_major":  # the authors': all bfs tasks, then all compression, ...
        return major
    if order == "interleaved":
        return np.tile(np.arange(functions, dtype=np.int64), per_function)
    return np.random.default_rng(seed).permutation(major)
