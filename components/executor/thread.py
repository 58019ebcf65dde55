"""Thread-pool executor: lowest dispatch cost; Python code shares the GIL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar, Literal

from pydantic import Field

from components.executor.protocol import ExecutorConfig, LoomExecutor


class ThreadExecutor(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` that reports its worker count."""

    def __init__(self, max_workers: int, name: str = "loom-worker") -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=name)
        self.workers = max_workers


class ThreadExecutorConfig(ExecutorConfig):
    """Thread pool inside the Loom process (default)."""

    kind: Literal["thread"] = "thread"
    workers_field: ClassVar[str | None] = "max_workers"
    max_workers: int = Field(4, ge=1, le=1024, description="number of worker threads")

    def pool(self, site: str | None) -> LoomExecutor:
        """Create the thread pool (its threads named by their site, where it has one)."""
        return ThreadExecutor(self.max_workers, "loom-worker" if site is None else f"loom-{site}")
