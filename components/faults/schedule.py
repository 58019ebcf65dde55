"""``faults=schedule``: inject the faults of a seeded schedule during every trial."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from components.faults.protocol import Fault, FaultsConfig
from components.faults.run import FaultSchedule


class ScheduleFaultsConfig(FaultsConfig):
    """A seeded schedule of faults, injected during every trial on the components that own them."""

    kind: Literal["schedule"] = "schedule"
    schedule: list[Fault] = Field(
        default_factory=list,
        description="the schedule, a list of entries: kind, at_s | at_fraction | every_s (+ "
        "times), duration_s, targets (one | minority | all | [names]), and rate, raises "
        "(task_failure), factor (the slow kinds) or chunks (container_corrupt); see the guide "
        "Injecting faults",
    )

    @model_validator(mode="after")
    def _one_task_failure(self) -> Self:
        if sum(f.kind == "task_failure" for f in self.schedule) > 1:
            raise ValueError("at most one task_failure entry: the task path has one failure rate")
        for index, fault in enumerate(self.schedule):
            if fault.kind == "task_failure" and (fault.at_fraction or fault.every_s):
                raise ValueError(
                    f"schedule[{index}] task_failure takes at_s and duration_s (a window of "
                    "the trial), not at_fraction or every_s"
                )
        return self

    def entries(self) -> list[Fault]:
        """The faults to inject."""
        return list(self.schedule)

    def build(self) -> FaultSchedule:
        """The schedule, ready to run beside each trial."""
        return FaultSchedule(self.entries())
