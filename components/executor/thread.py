"""Thread-pool executor: lowest dispatch cost; Python code shares the GIL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from pydantic import Field

from components.executor.protocol import ExecutorConfig, LoomExecutor


class ThreadExecutor(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` that reports its worker count."""

    def __init__(self, max_workers: int) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix="loom-worker")
        self.workers = max_workers


class ThreadExecutorConfig(ExecutorConfig):
    """Thread pool inside the Loom process (default)."""

    kind: Literal["thread"] = "thread"
    max_workers: int = Field(4, ge=1, le=1024, description="number of worker threads")

    def build(self) -> LoomExecutor:
        """Create the thread pool."""
        return ThreadExecutor(self.max_workers)
