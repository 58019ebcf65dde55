"""The schedule at work during one trial: a thread injects each fault and heals it on time.

Times count from the trial's start. A fault at ``at_fraction`` fires when the trial's first
progress bar with a total reaches that fraction (the scenario's own measure of its work).
Targets are drawn with a generator seeded by the run's seed, the fault's index and its
occurrence, so the same schedule hits the same targets again.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from components.base import ProgressReporter, ProgressTask
from components.faults.protocol import Fault, FaultSurface, Injected
from components.runtime.taskpath import FailureSpec

log = logging.getLogger(__name__)


class FaultInjectionFailed(RuntimeError):
    """A scheduled fault could not be injected: the trial did not get the faults it declared."""


@dataclass
class Occurrence:
    """One injection: what, when, where, and when it healed."""

    index: int  # the fault's position in the schedule
    kind: str
    at_s: float
    targets: list[str] = field(default_factory=list)
    detail: str = ""
    healed_at_s: float | None = None
    recover_s: float | None = None
    error: str | None = None
    heal: Any = None  # Injected.heal until it ran

    def record(self) -> dict[str, Any]:
        """As a JSON row of ``faults.jsonl``."""
        return {
            "fault": self.index,
            "kind": self.kind,
            "at_s": round(self.at_s, 4),
            "targets": self.targets,
            "detail": self.detail,
            "healed_at_s": None if self.healed_at_s is None else round(self.healed_at_s, 4),
            "recover_s": None if self.recover_s is None else round(self.recover_s, 4),
            "error": self.error,
        }

    def line(self) -> str:
        """One line for an error message."""
        where = ", ".join(self.targets) or "-"
        return f"{self.kind} on {where} at {self.at_s:.2f} s ({self.detail or self.error})"


def pick(targets: Any, names: list[str], rng: random.Random) -> list[str]:
    """The names a fault's ``targets`` select among ``names`` (seeded)."""
    if isinstance(targets, list):
        unknown = [t for t in targets if t not in names]
        if unknown:
            raise FaultInjectionFailed(
                f"targets {unknown} are not in this run; it has: {', '.join(names)}"
            )
        return list(targets)
    if targets == "all":
        return list(names)
    count = 1 if targets == "one" else max(1, (len(names) - 1) // 2)
    return sorted(rng.sample(names, count), key=names.index)


class TrialFaults:
    """The faults of one trial: the injecting thread, the log, the task path's failures.

    Args:
        faults: The schedule.
        seed: The run's seed.
        components: The trial's opened components (the surfaces are among them).

    """

    def __init__(self, faults: list[Fault], seed: int, components: Mapping[str, object]) -> None:
        self.faults = faults
        self.seed = seed
        self.surfaces = [c for c in components.values() if isinstance(c, FaultSurface)]
        self.occurrences: list[Occurrence] = []
        self.start = time.time()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._fired_fractions: set[int] = set()
        self._tracked_bar = False
        self._thread: threading.Thread | None = None

    # -- the task path's share ------------------------------------------------------------
    def task_failure(self) -> FailureSpec | None:
        """The failure injection of the trial's task path (None: no ``task_failure`` fault).

        Attempts fail at the fault's rate while it lasts (from ``at_s`` for ``duration_s``).
        """
        entries = [(i, f) for i, f in enumerate(self.faults) if f.kind == "task_failure"]
        if not entries:
            return None
        index, fault = entries[0]
        start = self.start + fault.first_s
        end = float("inf") if fault.duration_s is None else start + fault.duration_s
        with self._lock:
            self.occurrences.append(
                Occurrence(
                    index,
                    "task_failure",
                    fault.first_s,
                    ["task path"],
                    f"rate {fault.rate} of attempts until "
                    + ("the end" if fault.duration_s is None else f"{fault.duration_s:g} s later"),
                )
            )
        assert fault.rate is not None
        raises = fault.raises or "exception"
        return FailureSpec(fault.rate, raises, self.seed * 1_000_003 + index, start, end)

    # -- the schedule ------------------------------------------------------------------------
    def begin(self) -> None:
        """Start the thread that injects timed faults and heals every fault with a duration."""
        self.start = time.time()
        if any(f.kind != "task_failure" for f in self.faults):
            self._thread = threading.Thread(target=self._run, name="loom-faults", daemon=True)
            self._thread.start()

    def end(self) -> None:
        """Stop injecting and heal whatever is still in effect."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for occurrence in list(self.occurrences):
            self._heal(occurrence)

    def _due(self) -> list[tuple[float, int, int]]:
        """(offset s, fault index, occurrence number) of every timed injection, bounded."""
        due = []
        for index, fault in enumerate(self.faults):
            if fault.kind == "task_failure" or fault.at_fraction is not None:
                continue
            if fault.every_s is None:
                due.append((fault.first_s, index, 0))
                continue
            cap = fault.times or 100_000
            due += [(fault.first_s + n * fault.every_s, index, n) for n in range(cap)]
        return sorted(due)

    def _run(self) -> None:
        due = self._due()
        while not self._stop.is_set():
            now = time.time() - self.start
            for occurrence in list(self.occurrences):
                fault = self.faults[occurrence.index]
                if (
                    occurrence.heal is not None
                    and fault.duration_s is not None
                    and now >= occurrence.at_s + fault.duration_s
                ):
                    self._heal(occurrence)
            while due and due[0][0] <= now:
                _, index, number = due.pop(0)
                self.inject(index, number)
            waits = [d[0] for d in due[:1]]
            waits += [
                o.at_s + (self.faults[o.index].duration_s or 0)
                for o in self.occurrences
                if o.heal is not None and self.faults[o.index].duration_s is not None
            ]
            pause = min(waits, default=now + 0.5) - (time.time() - self.start)
            self._stop.wait(min(max(pause, 0.005), 0.5))

    def inject(self, index: int, number: int = 0) -> Occurrence:
        """Inject fault ``index`` now (its ``number``-th occurrence) and log it."""
        fault = self.faults[index]
        occurrence = Occurrence(index, fault.kind, time.time() - self.start)
        with self._lock:
            self.occurrences.append(occurrence)
        rng = random.Random(f"{self.seed}:{index}:{number}")
        try:
            found = [(s, n) for s in self.surfaces for n in s.fault_targets(fault.kind)]
            if not found:
                raise FaultInjectionFailed(f"no component of this run takes {fault.kind} now")
            # Surfaces may share names (the storage network's containers and the fabric
            # connector's are one fabric): a name is chosen once and hit on each of them.
            names = list(dict.fromkeys(n for _, n in found))
            chosen = pick(fault.targets, names, rng)
            occurrence.targets = chosen
            details = []
            heals = []
            recovered: list[float] = []
            for surface in {id(s): s for s, _ in found}.values():
                mine = [n for s, n in found if s is surface and n in chosen]
                if mine:
                    done: Injected = surface.inject(fault.kind, mine, fault)
                    details.append(done.detail)
                    if done.recover_s is not None:
                        recovered.append(done.recover_s)
                    if done.heal is not None:
                        heals.append(done.heal)
            occurrence.detail = "; ".join(details)
            if heals:
                occurrence.heal = _all(heals)
            else:
                occurrence.healed_at_s = time.time() - self.start
                occurrence.recover_s = max(recovered) if recovered else None
            log.info("fault injected: %s", occurrence.line())
        except Exception as exc:
            occurrence.error = f"{type(exc).__name__}: {exc}"
            log.error("fault %s could not be injected: %s", fault.kind, occurrence.error)
        return occurrence

    def _heal(self, occurrence: Occurrence) -> None:
        with self._lock:
            heal, occurrence.heal = occurrence.heal, None
        if heal is None:
            return
        began = time.time()
        try:
            took = heal()
        except Exception as exc:
            occurrence.error = f"healing failed: {type(exc).__name__}: {exc}"
            log.error("fault %s could not be healed: %s", occurrence.kind, occurrence.error)
            return
        occurrence.healed_at_s = began - self.start
        occurrence.recover_s = took if took is not None else time.time() - began

    # -- at_fraction ---------------------------------------------------------------------------
    def progress(self, inner: ProgressReporter) -> ProgressReporter:
        """``inner``, with the trial's first bar that has a total firing ``at_fraction`` faults."""
        if not any(f.at_fraction is not None for f in self.faults):
            return inner
        return _FractionProgress(self, inner)

    def reached(self, fraction: float) -> None:
        """The trial's work reached ``fraction``: fire the faults due by then."""
        for index, fault in enumerate(self.faults):
            if fault.at_fraction is None or fault.at_fraction > fraction:
                continue
            with self._lock:
                if index in self._fired_fractions:
                    continue
                self._fired_fractions.add(index)
            self.inject(index)

    def claim_bar(self) -> bool:
        """Whether the bar opening now is the one that measures the trial (the first)."""
        with self._lock:
            first, self._tracked_bar = not self._tracked_bar, True
            return first

    # -- what the trial logs ----------------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        """``faults_injected``, per kind, what failed to inject and the slowest recovery."""
        done = [o for o in self.occurrences if o.error is None or o.detail]
        out: dict[str, float] = {"faults_injected": float(len(done))}
        for kind in sorted({o.kind for o in self.occurrences}):
            out[f"faults_{kind}"] = float(sum(o.kind == kind for o in done))
        out["faults_not_injected"] = float(len(self.occurrences) - len(done))
        recovered = [o.recover_s for o in self.occurrences if o.recover_s is not None]
        if recovered:
            out["fault_recover_s_max"] = max(recovered)
        return out

    def failures(self) -> list[Occurrence]:
        """Occurrences that could not be injected or healed."""
        return [o for o in self.occurrences if o.error is not None]

    def explain(self, exc: BaseException) -> None:
        """Add the faults in effect before ``exc`` to it, so the root cause travels with it."""
        if self.occurrences:
            lines = "\n".join(f"  - {o.line()}" for o in self.occurrences)
            exc.add_note(f"faults injected before this failure:\n{lines}")


def _all(heals: list[Any]) -> Any:
    def heal() -> float | None:
        took = [h() for h in heals]
        values = [t for t in took if t is not None]
        return max(values) if values else None

    return heal


class _FractionTask:
    def __init__(self, faults: TrialFaults, inner: ProgressTask, total: int) -> None:
        self.faults, self.inner, self.total = faults, inner, total

    def update(self, completed: int) -> None:
        self.inner.update(completed)
        self.faults.reached(completed / self.total)


class _FractionProgress:
    def __init__(self, faults: TrialFaults, inner: ProgressReporter) -> None:
        self.faults, self.inner = faults, inner

    @contextmanager
    def bar(self, description: str, total: int | None) -> Iterator[ProgressTask]:
        with self.inner.bar(description, total) as task:
            if total and self.faults.claim_bar():
                yield _FractionTask(self.faults, task, total)
            else:
                yield task
