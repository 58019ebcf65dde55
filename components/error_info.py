"""Why something failed, kept whole: one type for job results and task records alike.

A job's result (``framework.job``), an executor task's record (``TaskPath``) and a steering
task's record all carry an :class:`ErrorInfo`, so the evidence of a failure (its type, its full
message and its traceback) survives a worker process and reaches ``error.txt`` and MLflow.
"""

from __future__ import annotations

import traceback as tb
from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorInfo:
    """Why a job or a task failed: the exception's type, its message and its traceback."""

    type: str
    message: str
    traceback: str = ""

    @classmethod
    def of(cls, exc: BaseException) -> ErrorInfo:
        """The evidence of ``exc`` (call it where ``exc`` was caught: the traceback is there)."""
        # Notes (``add_note``) carry what the raiser could not know: the fault behind it.
        message = "\n".join([str(exc).strip(), *getattr(exc, "__notes__", ())]).strip()
        return cls(type(exc).__name__, message, "".join(tb.format_exception(exc)))

    @property
    def line(self) -> str:
        """``Type: first line of the message`` (what the summary shows)."""
        first = self.message.splitlines()[0] if self.message else ""
        return f"{self.type}: {first}" if first else self.type

    def __str__(self) -> str:
        return self.line

    def to_dict(self) -> dict[str, str]:
        """As JSON data."""
        return {"type": self.type, "message": self.message, "traceback": self.traceback}
