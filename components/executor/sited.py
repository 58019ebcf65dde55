"""One pool per site: the executor a recipe's sites make when they set their ``workers``.

Each site's tasks run in its own pool of the run's executor option (processes, threads, a
Dask local cluster), sized by ``sites.<name>.workers``, so a site with fewer workers queues
its own tasks and no other site's. The task path gives each pool a lane
(:class:`~components.runtime.taskpath.TaskPath`, ``submit(..., site=...)``); a task with no
site runs in the first pool (the root site's). A worker fault names sites
(``targets: [de]``): each loses one worker of its pool.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future
from typing import Any, Self

from components.faults.protocol import Fault, FaultSurface, Injected
from components.runtime.protocols import LoomExecutor


class SitedExecutor(Executor):
    """A pool per site, opened and shut down together.

    Args:
        pools: Site → its pool, the default (root) site first.

    """

    def __init__(self, pools: Mapping[str, LoomExecutor]) -> None:
        if not pools:
            raise ValueError("a sited executor needs at least one site's pool")
        self.pools = dict(pools)
        self.workers = sum(pool.workers for pool in self.pools.values())
        self._default = next(iter(self.pools.values()))

    def __repr__(self) -> str:
        sizes = ", ".join(f"{site}: {pool.workers}" for site, pool in self.pools.items())
        return f"SitedExecutor({sizes})"

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Schedule ``fn`` on the first site's pool (the task path routes by site itself)."""
        return self._default.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop every site's pool."""
        for pool in self.pools.values():
            pool.shutdown(wait=wait, cancel_futures=cancel_futures)

    def __enter__(self) -> Self:
        return self

    # -- faults: a site's worker, by the site's name ------------------------------------------
    def fault_targets(self, kind: str) -> list[str]:
        """The sites whose pool takes ``kind`` now: a fault on a site hits one of its workers."""
        return [
            site
            for site, pool in self.pools.items()
            if isinstance(pool, FaultSurface) and pool.fault_targets(kind)
        ]

    def inject(self, kind: str, targets: Sequence[str], fault: Fault) -> Injected:
        """Hit one worker of each target site's pool (its first); undoing undoes them all."""
        done: list[tuple[str, Injected]] = []
        for site in targets:
            pool = self.pools[site]
            assert isinstance(pool, FaultSurface), f"{site}'s pool takes no faults"
            done.append((site, pool.inject(kind, pool.fault_targets(kind)[:1], fault)))
        heals = [d.heal for _, d in done if d.heal is not None]

        def heal() -> float | None:
            for undo in heals:
                undo()
            return None

        detail = "; ".join(f"{site}: {d.detail}" for site, d in done)
        return Injected(detail, heal if heals else None)
