"""The planning model of one endpoint: GreenFaaS's ``MockEndpoint``, with O(log slots) updates.

A scheduler asks "what would the makespan and energy be if these tasks went here?" thousands
of times. The authors copy the whole mock for every question; here a question reads the
earliest worker deadline (a heap) and answers in constant time, and only committing a task
changes the state. Blocks are added as the authors' mock adds them: on the first task of a
cold endpoint, and while ``slots / tasks < parallelism`` and blocks remain, replaying the
tasks so far over the new slots.

``energy()`` is dynamic task energy + static power of every active block over this endpoint's
makespan (from t = 0) + an idle tail of ``shutdown_s`` for each block above ``min_blocks``.
``runtime()`` adds the cold start to a cold endpoint's makespan once it holds tasks.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from components.endpoints.protocol import Site


class PlanEndpoint:
    """One endpoint's tentative schedule.

    Args:
        site: The endpoint.
        faithful: Reproduce the authors' quirk that a candidate's own cold start is left out of
            its predicted makespan (the other endpoints' ``runtime()`` include theirs).

    """

    __slots__ = (
        "blocks",
        "deadlines",
        "faithful",
        "makespan",
        "runtimes",
        "site",
        "task_energy",
    )

    def __init__(self, site: Site, *, faithful: bool = False) -> None:
        self.site = site
        self.faithful = faithful
        self.blocks = site.min_blocks
        self.deadlines = [0.0] * (site.slots * site.min_blocks)
        self.runtimes: list[float] = []
        self.makespan = 0.0
        self.task_energy = 0.0

    @property
    def tasks(self) -> int:
        """Tasks committed so far."""
        return len(self.runtimes)

    def _adds_block(self, slots: int, blocks: int, tasks: int) -> bool:
        site = self.site
        return slots == 0 or (slots / tasks < site.parallelism and blocks < site.max_blocks)

    def _static(self, makespan: float, blocks: int) -> float:
        site = self.site
        tail = (blocks - site.min_blocks) * site.shutdown_s
        return (makespan * blocks + tail) * site.static_w

    def _with_cold_start(self, makespan: float) -> float:
        if self.site.cold and makespan > 0:
            return makespan + self.site.cold_start_s
        return makespan

    def runtime(self) -> float:
        """Predicted makespan of this endpoint (with its cold start, once it holds tasks)."""
        return self._with_cold_start(self.makespan)

    def energy(self) -> float:
        """Predicted energy of this endpoint (J): dynamic + static + idle tail."""
        return self.task_energy + self._static(self.makespan, self.blocks)

    def predict(self, runtime_s: float, energy_j: float) -> tuple[float, float]:
        """Makespan and energy if one more task came here; the state is left unchanged."""
        tasks = len(self.runtimes) + 1
        if self._adds_block(len(self.deadlines), self.blocks, tasks):
            return self.predict_many([runtime_s], [energy_j])
        makespan = max(self.makespan, self.deadlines[0] + runtime_s)
        energy = self.task_energy + energy_j + self._static(makespan, self.blocks)
        return (makespan if self.faithful else self._with_cold_start(makespan)), energy

    def predict_many(
        self, runtimes: Sequence[float], energies: Sequence[float]
    ) -> tuple[float, float]:
        """Makespan and energy if these tasks came here, in order; the state is unchanged."""
        blocks, _, makespan = self._place(list(runtimes), copy=True)
        energy = self.task_energy + float(sum(energies)) + self._static(makespan, blocks)
        return (makespan if self.faithful else self._with_cold_start(makespan)), energy

    def schedule(self, runtime_s: float, energy_j: float) -> None:
        """Commit one task."""
        self.schedule_many([runtime_s], [energy_j])

    def schedule_many(self, runtimes: Sequence[float], energies: Sequence[float]) -> None:
        """Commit tasks, in order."""
        self.blocks, self.deadlines, self.makespan = self._place(list(runtimes), copy=False)
        self.runtimes += runtimes
        self.task_energy += float(sum(energies))

    def _place(self, runtimes: list[float], *, copy: bool) -> tuple[int, list[float], float]:
        """List-schedule ``runtimes`` after the committed tasks; (blocks, heap, makespan)."""
        blocks, makespan = self.blocks, self.makespan
        deadlines = self.deadlines[:] if copy else self.deadlines
        slots_per_block = self.site.slots
        tasks = len(self.runtimes)
        for index, runtime in enumerate(runtimes):
            tasks += 1
            if self._adds_block(len(deadlines), blocks, tasks):
                blocks += 1
                # Every earlier task is replayed over the new slots, as the mock does.
                deadlines = [0.0] * (slots_per_block * blocks)
                makespan = 0.0
                for earlier in (*self.runtimes, *runtimes[:index]):
                    finish = deadlines[0] + earlier
                    heapq.heapreplace(deadlines, finish)
                    makespan = max(makespan, finish)
            finish = deadlines[0] + runtime
            heapq.heapreplace(deadlines, finish)
            makespan = max(makespan, finish)
        return blocks, deadlines, makespan
