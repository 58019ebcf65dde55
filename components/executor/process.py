"""Process-pool executor: true parallelism on one machine; arguments are pickled."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Literal

from pydantic import Field

from components.executor.protocol import ExecutorConfig, LoomExecutor


class ProcessExecutor(ProcessPoolExecutor):
    """A ``ProcessPoolExecutor`` that reports its worker count."""

    def __init__(self, max_workers: int, start_method: str) -> None:
        super().__init__(
            max_workers=max_workers, mp_context=multiprocessing.get_context(start_method)
        )
        self.workers = max_workers


class ProcessExecutorConfig(ExecutorConfig):
    """Pool of worker processes on this machine."""

    kind: Literal["process"] = "process"
    max_workers: int = Field(2, ge=1, le=512, description="number of worker processes")
    # fork is unsafe once Prefect's and MLflow's threads run in the parent.
    start_method: Literal["spawn", "forkserver"] = Field(
        "forkserver", description="how worker processes start (fork is unsafe with threads)"
    )

    def build(self) -> LoomExecutor:
        """Create the process pool."""
        return ProcessExecutor(self.max_workers, self.start_method)
