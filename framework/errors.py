"""Errors meant for people: the CLI prints them without a traceback."""

from __future__ import annotations


class LoomError(Exception):
    """An error the CLI reports as a message and an exit status."""

    exit_code = 1


class ConfigError(LoomError):
    """The recipe, a config file or an override is invalid; nothing was started."""

    exit_code = 2

    def __init__(self, problems: list[str] | str, *, context: str = "") -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.context = context
        super().__init__(self.render())

    def render(self) -> str:
        """The message: a heading and one line per problem."""
        head = f"invalid config{f' ({self.context})' if self.context else ''}"
        if len(self.problems) == 1:
            return f"{head}: {self.problems[0]}"
        return head + ":\n" + "\n".join(f"  - {p}" for p in self.problems)


class UsageError(LoomError):
    """A command was given something it cannot use (a metric that was never logged, ...)."""

    exit_code = 2


class RunFailed(LoomError):
    """A job started but did not finish."""
