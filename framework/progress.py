"""Rich progress bars for trials and the tasks inside them (shown on a terminal only)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class _Bar:
    def __init__(self, progress: Progress, task_id: Any) -> None:
        self._progress = progress
        self._task_id = task_id

    def update(self, completed: int) -> None:
        self._progress.update(self._task_id, completed=completed)


class RichProgress:
    """One live display; nested bars come and go beneath the outer one."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal,
            transient=True,
        )

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    @contextmanager
    def bar(self, description: str, total: int | None) -> Iterator[_Bar]:
        """A bar that disappears when its work is done."""
        task_id = self._progress.add_task(description, total=total)
        try:
            yield _Bar(self._progress, task_id)
        finally:
            self._progress.remove_task(task_id)
