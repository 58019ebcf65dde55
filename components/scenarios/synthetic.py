"""Scenarios of the executors area: the TaPS-style synthetic benchmark."""

from __future__ import annotations

from typing import ClassVar, Literal, Self

from pydantic import Field, model_validator

from components.base import RunContext, Scenario, ScenarioConfig
from components.runtime.protocols import LoomExecutor
from components.runtime.taskpath import TaskHandle, TaskPath
from components.runtime.trial import TASK_PATH_FAULTS, TaskTrial
from components.scenarios.taps_workflows import (
    Structure,
    Workflow,
    build_workflow,
    noop,
    synthetic_task,
)

# Every task's output is held until the trial ends, so bound what a trial can hold.
MAX_HELD_BYTES = 2 * 1024**3


class SyntheticScenarioConfig(ScenarioConfig):
    """TaPS-style synthetic workflow: bag, diamond, reduce or sequential tasks with real bytes."""

    kind: Literal["synthetic"] = "synthetic"
    requires: ClassVar[tuple[str, ...]] = ("executor", "dataflow")
    fault_kinds: ClassVar[frozenset[str]] = TASK_PATH_FAULTS
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "makespan_s",
        "tasks_per_s",
        "task_latency_p50_ms",
        "task_latency_p95_ms",
        "task_latency_p99_ms",
        "overhead_per_task_ms",
        "tasks_failed",
        "result_verified",
        "store_keys_leaked",
    )

    structure: Structure = Field("bag", description="shape of the task graph")
    tasks: int = Field(100, ge=1, le=1_000_000, description="parallel tasks (chain length)")
    task_sleep_s: float = Field(0.0, ge=0.0, le=3600.0, description="mean sleep per task (s)")
    task_sleep_jitter: float = Field(
        0.0, ge=0.0, le=3600.0, description="std. dev. of the per-task sleep (s), normal"
    )
    payload_bytes: int = Field(
        1024, ge=0, le=1024**3, description="bytes passed into and returned by each task"
    )
    warmup_tasks: int = Field(0, ge=0, le=100_000, description="no-op tasks run first, unrecorded")
    seed: int | None = Field(None, ge=0, description="workload seed; null uses the run's seed")
    task_retries: int = Field(0, ge=0, le=100, description="retries of a failed task attempt")
    plots: bool = Field(True, description="write timeline and latency plots")

    @model_validator(mode="after")
    def _bounded_memory(self) -> Self:
        held = (self.tasks + 2) * self.payload_bytes
        if held > MAX_HELD_BYTES:
            raise ValueError(
                f"tasks × payload_bytes = {self.tasks} × {self.payload_bytes} B holds "
                f"{held / 1024**3:.1f} GiB of task outputs; at most "
                f"{MAX_HELD_BYTES // 1024**3} GiB is allowed: lower tasks or payload_bytes"
            )
        return self

    def build(self) -> Scenario:
        """Create the scenario."""
        return SyntheticScenario(self)


class SyntheticScenario:
    """Runs a synthetic workflow on the run's executor through Loom's task path."""

    def __init__(self, config: SyntheticScenarioConfig) -> None:
        self.config = config

    def run(self, ctx: RunContext) -> None:
        """Run one trial: warm up, run the workflow, verify its result, record everything."""
        cfg = self.config
        executor = ctx.component("executor", LoomExecutor)  # type: ignore[type-abstract]
        seed = ctx.seed if cfg.seed is None else cfg.seed
        workflow = build_workflow(
            cfg.structure,
            cfg.tasks,
            cfg.task_sleep_s,
            cfg.task_sleep_jitter,
            cfg.payload_bytes,
            seed,
        )
        if cfg.warmup_tasks:
            with TaskPath(executor) as warmup:
                for _ in range(cfg.warmup_tasks):
                    warmup.submit(noop, name="warmup")
                warmup.wait()

        description = f"trial {ctx.trial}: {cfg.structure} tasks"
        trial = TaskTrial(ctx, max_attempts=cfg.task_retries + 1)
        with trial as path, ctx.progress.bar(description, len(workflow.tasks)) as bar:
            handles = self._submit(path, workflow)
            for completed in path.iter_progress():
                bar.update(completed)
            verified = self._verify(workflow, handles)  # before the path frees its values
        title = f"{cfg.structure} × {cfg.tasks}" if cfg.plots else None
        trial.record({"result_verified": float(verified)}, title)

    @staticmethod
    def _submit(path: TaskPath, workflow: Workflow) -> list[TaskHandle]:
        handles: list[TaskHandle] = []
        for index, spec in enumerate(workflow.tasks):
            inputs = [handles[p] for p in spec.parents] if spec.parents else [workflow.payload]
            handles.append(
                path.submit(
                    synthetic_task,
                    spec.sleep_s,
                    workflow.payload_bytes,
                    index,
                    *inputs,
                    name=f"{workflow.structure}-{index}",
                )
            )
        return handles

    @staticmethod
    def _verify(workflow: Workflow, handles: list[TaskHandle]) -> bool:
        expected = workflow.expected_outputs()
        return all(handles[i].success and handles[i].value == out for i, out in expected.items())
