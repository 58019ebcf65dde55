"""``endpoints=live``: endpoints that are real executor pools, profiled online.

Measured here: every task's runtime (start to end on its worker), its CPU time and hence its
dynamic energy (the ``energy`` group's joules per CPU-second, as every Loom task is metered),
and each placement's makespan. Emulated, because one machine cannot show them: each
endpoint's static power while its block is up, its cold start (the first dispatch to a cold
endpoint waits ``cold_start_s``), and ``power_scale`` (a more or less efficient CPU scales the
measured dynamic energy). Results say which is which.
"""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from types import TracebackType
from typing import Annotated, Any, Literal, Self

import numpy as np
from pydantic import Field, model_validator

from components.endpoints._functions import LIVE_FUNCTIONS, run_function
from components.endpoints._predictors import LeastSquaresPredictor, TablePredictor
from components.endpoints._shared import SiteConfig, Table, check_table, task_order
from components.endpoints.protocol import EndpointsConfig, Executed, Site, TaskPlacement, Workload
from components.energy.profiles import LOCAL_WATTS_PER_THREAD
from components.executor.dask import DaskExecutorConfig
from components.executor.process import ProcessExecutorConfig
from components.executor.thread import ThreadExecutorConfig
from components.runtime.protocols import LoomExecutor
from components.runtime.taskpath import TaskHandle, TaskPath

MEASURED = ("makespan_s", "runtime_s", "dynamic_j (estimated from CPU time)")
EMULATED = ("static_j (static_w while up)", "cold_start_s (a wait)", "power_scale")


ExecutorChoice = Annotated[
    ThreadExecutorConfig | ProcessExecutorConfig | DaskExecutorConfig,
    Field(discriminator="kind"),
]


class LiveSiteConfig(SiteConfig):
    """An endpoint that is a real executor pool; its width is its slots."""

    slots: int | None = Field(  # type: ignore[assignment]
        None, ge=1, le=100_000, description="workers (default: the executor's width)"
    )
    executor: ExecutorChoice = Field(description="the pool: thread, process or dask (address)")
    power_scale: float = Field(
        1.0, gt=0, le=100, description="EMULATED: scale of measured dynamic energy (CPU type)"
    )

    @model_validator(mode="after")
    def _width(self) -> Self:
        if self.max_blocks != 1:
            raise ValueError(f"max_blocks={self.max_blocks}: a live endpoint is one pool (1)")
        width = _executor_width(self.executor)
        if self.slots is None:
            if width is None:
                raise ValueError("slots: give the width of a Dask cluster reached by address")
            self.slots = width
        return self


def _executor_width(executor: Any) -> int | None:
    if isinstance(executor, DaskExecutorConfig):
        if executor.address is not None:
            return None
        return (executor.n_workers or 2) * (executor.threads_per_worker or 1)
    return int(executor.max_workers)


class LiveEndpointsConfig(EndpointsConfig):
    """Endpoints that are real executor pools here, profiled online."""

    kind: Literal["live"] = "live"
    sites: dict[str, LiveSiteConfig] = Field(description="endpoints by name, in order")
    functions: list[str] = Field(
        default_factory=lambda: ["bfs", "mst", "pagerank", "compression", "thumbnail", "matmul"],
        description="functions of the workload (bfs, mst, pagerank, compression, thumbnail, "
        "matmul)",
    )
    profiles: Literal["learned"] | Table = Field(
        "learned", description="learned (measured online) or function → endpoint → cell"
    )
    profile_tasks: int = Field(
        4, ge=2, le=1000, description="measured tasks per function and endpoint before placing"
    )
    cold_start_s: float = Field(1.0, ge=0, le=3600, description="EMULATED cold start")
    scale: float = Field(1.0, gt=0, le=100, description="size of every task (1: ~0.05-0.3 s)")

    @model_validator(mode="after")
    def _known_functions(self) -> Self:
        if not self.sites:
            raise ValueError("sites: give at least one endpoint")
        unknown = [f for f in self.functions if f not in LIVE_FUNCTIONS]
        if unknown or not self.functions:
            raise ValueError(
                f"functions={self.functions}: each must be one of {', '.join(LIVE_FUNCTIONS)}"
            )
        if not isinstance(self.profiles, str):
            check_table(self.profiles, list(self.sites), set(LIVE_FUNCTIONS), self.functions)
        return self

    def build(self) -> LiveEndpoints:
        """The live endpoints (their pools start when the engine opens them)."""
        return LiveEndpoints(self)


class LiveEndpoints:
    """Executor pools as endpoints; a context manager that starts and stops them."""

    live = True

    def __init__(self, config: LiveEndpointsConfig) -> None:
        self.config = config
        self.sites = tuple(
            Site(
                name,
                int(s.slots or 1),
                s.min_blocks,
                1,
                s.parallelism,
                s.static_w,
                s.shutdown_s,
                s.cold_start_s if s.cold_start_s is not None else config.cold_start_s,
            )
            for name, s in config.sites.items()
        )
        self.plan_sites = self.sites  # the pools' widths are known
        self.functions = tuple(config.functions)
        self.power_scale = [s.power_scale for s in config.sites.values()]
        self.executors: list[LoomExecutor] = []
        self._stack = ExitStack()

    def __enter__(self) -> Self:
        for config in self.config.sites.values():
            self.executors.append(self._stack.enter_context(config.executor.build()))
        # Start every worker before anything is timed: a pool's own start is not a cold start.
        for executor, site in zip(self.executors, self.sites, strict=True):
            for future in [
                executor.submit(run_function, "matmul", 8, 0) for _ in range(site.slots)
            ]:
                future.result()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stack.close()
        self.executors.clear()

    def _sizes(self, functions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        low = np.array([LIVE_FUNCTIONS[self.functions[f]][0] for f in functions.tolist()])
        high = np.array([LIVE_FUNCTIONS[self.functions[f]][1] for f in functions.tolist()])
        return np.asarray((low + (high - low) * rng.random(len(functions))) * self.config.scale)

    def workload(self, tasks_per_function: int, order: str, seed: int) -> Workload:
        """The batch: each task's size drawn between its function's bounds (the feature)."""
        functions = task_order(len(self.functions), tasks_per_function, order, seed)
        sizes = self._sizes(functions, np.random.default_rng(seed))
        return Workload(functions, sizes.reshape(-1, 1))

    def predictor(self, seed: int, watts_per_thread: float | None) -> Any:
        """Learn each (function, endpoint) by running ``profile_tasks`` tasks there."""
        if not isinstance(self.config.profiles, str):
            table = {
                f: {e: (c.runtime_s, c.energy_j) for e, c in row.items()}
                for f, row in self.config.profiles.items()
            }
            return TablePredictor(self.functions, [s.name for s in self.sites], table)
        predictor = LeastSquaresPredictor(self.functions, [s.name for s in self.sites], 1)
        count = self.config.profile_tasks
        functions = np.repeat(np.arange(len(self.functions), dtype=np.int64), count)
        # Sizes spread over each function's range, so the fit sees its slope.
        spread = np.tile(np.linspace(0, 1, count), len(self.functions))
        low = np.array([LIVE_FUNCTIONS[self.functions[f]][0] for f in functions.tolist()])
        high = np.array([LIVE_FUNCTIONS[self.functions[f]][1] for f in functions.tolist()])
        sizes = (low + (high - low) * spread) * self.config.scale
        for e, executor in enumerate(self.executors):
            with TaskPath(executor) as path:
                handles = [
                    path.submit(run_function, self.functions[f], float(s), seed + 7 + i)
                    for i, (f, s) in enumerate(zip(functions.tolist(), sizes.tolist(), strict=True))
                ]
                path.wait()
                _raise_failed(handles, self.sites[e].name)
                for f, size, handle in zip(
                    functions.tolist(), sizes.tolist(), handles, strict=True
                ):
                    runtime = handle.end - handle.start
                    energy = self._energy(handle.cpu_s, e, watts_per_thread)
                    predictor.observe(f, e, [size], runtime, energy)
        predictor.fit()
        return predictor

    def _energy(self, cpu_s: float, endpoint: int, watts_per_thread: float | None) -> float:
        watts = LOCAL_WATTS_PER_THREAD if watts_per_thread is None else watts_per_thread
        return cpu_s * watts * self.power_scale[endpoint]

    def run(
        self,
        placement: TaskPlacement,
        workload: Workload,
        used: tuple[int, ...],
        watts_per_thread: float | None,
    ) -> Executed:
        """Run the tasks on their endpoints' pools (cold starts emulated); measure them."""
        endpoint = placement.endpoint
        sizes = workload.features[:, 0].tolist()
        paths = {e: TaskPath(self.executors[e]) for e in used}
        handles: dict[int, TaskHandle] = {}
        lock = threading.Lock()
        began = time.time()

        def dispatch(e: int) -> None:
            mine = placement.order[endpoint[placement.order] == e].tolist()
            if mine and self.sites[e].cold:
                time.sleep(self.sites[e].cold_start_s)  # EMULATED: the block comes up
            for task in mine:
                name = self.functions[int(workload.functions[task])]
                handle = paths[e].submit(run_function, name, sizes[task], task)
                with lock:
                    handles[task] = handle

        threads = [threading.Thread(target=dispatch, args=(e,)) for e in used]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        finish = {e: 0.0 for e in used}
        for path in paths.values():
            path.wait()
            path.close()
        n = workload.tasks
        runtime, energy, start = np.zeros(n), np.zeros(n), np.zeros(n)
        for task, handle in handles.items():
            if not handle.success:
                raise RuntimeError(
                    f"task {task} failed on {self.sites[endpoint[task]].name}: {handle.error}"
                )
            e = int(endpoint[task])
            runtime[task] = handle.end - handle.start
            energy[task] = self._energy(handle.cpu_s, e, watts_per_thread)
            start[task] = handle.start - began
            finish[e] = max(finish[e], handle.end - began)
        makespan = max(finish.values(), default=0.0)
        static = 0.0
        counts = np.bincount(endpoint, minlength=len(self.sites))
        for e in used:
            site = self.sites[e]
            if site.min_blocks:
                static += site.static_w * site.min_blocks * makespan
            elif counts[e]:
                static += site.static_w * (finish[e] + site.shutdown_s - site.cold_start_s)
        tasks = {self.sites[e].name: int(counts[e]) for e in used}
        return Executed(
            makespan, float(energy.sum()), static, tasks, runtime, energy, start, MEASURED, EMULATED
        )


def _raise_failed(handles: list[TaskHandle], endpoint: str) -> None:
    failed = [h for h in handles if not h.success]
    if failed:
        raise RuntimeError(
            f"profiling on {endpoint}: task {failed[0].task_id} failed: {failed[0].error}"
        )
