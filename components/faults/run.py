"""What the ``faults`` group builds: a schedule that runs beside each trial."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from components.faults._injector import FaultInjectionFailed, TrialFaults
from components.faults.protocol import Fault


class FaultSchedule:
    """A job's fault schedule; :meth:`during` runs it beside one trial.

    Args:
        faults: The schedule (empty: no faults, nothing runs).

    """

    def __init__(self, faults: list[Fault]) -> None:
        self.faults = faults

    @contextmanager
    def during(self, seed: int, components: Mapping[str, object]) -> Iterator[TrialFaults]:
        """Inject the schedule while the block runs; heal everything at its end.

        A failure inside the block gets the faults injected before it as a note (its root
        cause, where a fault caused it). A fault that could not be injected or healed fails
        the trial after the block: its results would claim faults it did not get.

        Raises:
            FaultInjectionFailed: A scheduled fault was not injected or not healed.

        """
        trial = TrialFaults(self.faults, seed, components)
        trial.begin()
        try:
            yield trial
        except BaseException as exc:
            trial.end()
            trial.explain(exc)
            raise
        trial.end()
        failed = trial.failures()
        if failed:
            lines = "; ".join(o.line() for o in failed)
            raise FaultInjectionFailed(f"{len(failed)} scheduled fault(s) went wrong: {lines}")
