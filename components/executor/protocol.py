"""The ``executor`` group: its config base. What it builds is the runtime's ``LoomExecutor``."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Sequence
from typing import ClassVar, Self

from pydantic import PrivateAttr

from components.base import ComponentConfig
from components.faults.protocol import Injected
from components.runtime.protocols import LoomExecutor

__all__ = ["ExecutorConfig", "LoomExecutor", "signal_workers"]


def signal_workers(kind: str, pids: Sequence[int], what: str) -> Injected:
    """``worker_kill``: SIGKILL ``pids``; ``process_pause``: SIGSTOP them, healed by SIGCONT."""

    def send(number: signal.Signals) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):  # already gone
                os.kill(pid, number)

    if kind == "worker_kill":
        send(signal.SIGKILL)
        return Injected(f"SIGKILL {what}")
    send(signal.SIGSTOP)
    return Injected(f"SIGSTOP {what}", lambda: send(signal.SIGCONT))


class ExecutorConfig(ComponentConfig):
    """Base of executor configs.

    An option builds its pool in :meth:`pool`; :meth:`build` builds one, or one per site
    where :meth:`at_sites` placed the executor (a :class:`~components.executor.sited.
    SitedExecutor`). An option that overrides :meth:`build` itself cannot stand at sites.
    """

    # The field holding the pool's worker count: the sites' ``workers`` replace it.
    workers_field: ClassVar[str | None] = None

    # Where :meth:`at_sites` put the pools: (site, workers) each, the root's first.
    _sites: tuple[tuple[str, int], ...] | None = PrivateAttr(None)

    def places_at_sites(self) -> bool:
        """Whether the option can build one pool per site."""
        return self.workers_field is not None and type(self).build is ExecutorConfig.build

    def at_sites(self, layout: Sequence[tuple[str, int]]) -> Self:
        """A copy that builds one pool per site, each with that site's workers.

        Raises:
            ValueError: The option cannot place pools at sites (:meth:`places_at_sites`).

        """
        if not self.places_at_sites():
            raise ValueError(f"executor={self.kind} does not place pools at sites")
        placed = self.model_copy()
        placed._sites = tuple((site, int(n)) for site, n in layout)
        return placed

    @property
    def sites(self) -> tuple[tuple[str, int], ...] | None:
        """The sites' pools, (site, workers) each; None: one pool serves every task."""
        return self._sites

    def fault_target_names(self, kind: str) -> list[str] | None:
        """At sites, a worker fault targets sites by name (one worker each); else unknown."""
        if self._sites is None or kind not in self.takes_faults():
            return None
        return [site for site, _ in self._sites]

    def build(self) -> LoomExecutor:
        """The executor: one pool, or one per site (the first serving tasks with no site)."""
        if self._sites is None:
            return self.pool(None)
        from components.executor.sited import SitedExecutor

        assert self.workers_field is not None
        pools: dict[str, LoomExecutor] = {}
        try:
            for site, workers in self._sites:
                pools[site] = self.model_copy(update={self.workers_field: workers}).pool(site)
        except BaseException:
            for built in pools.values():
                built.shutdown(wait=False, cancel_futures=True)
            raise
        return SitedExecutor(pools)

    def pool(self, site: str | None) -> LoomExecutor:
        """Create one pool of this option's workers (for ``site``, where it stands at one)."""
        raise NotImplementedError
