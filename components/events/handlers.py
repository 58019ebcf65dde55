"""Built-in trigger handlers: ``handler(events, context, **handler_args)``.

``events`` are plain records (see ``Event.as_record``); ``context`` carries the trigger's
name and the attempt number (0 first). A handler that raises has its batch retried and,
once the retries are spent, dead-lettered. Handlers are module-level functions so they can
run on any executor, processes and Dask included.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class HandlerFailed(RuntimeError):
    """Raised by the built-in handlers that fail on purpose."""


def count(events: list[dict[str, Any]], context: dict[str, Any]) -> int:
    """Do nothing but report how many events arrived."""
    del context
    return len(events)


def fail_when(
    events: list[dict[str, Any]], context: dict[str, Any], field: str = "poison", value: Any = True
) -> int:
    """Fail on every attempt when an event's value has ``field == value`` (a poison event)."""
    del context
    for event in events:
        body = event["value"]
        if isinstance(body, dict) and body.get(field) == value:
            raise HandlerFailed(f"event at offset {event['offset']} has {field}={value!r}")
    return len(events)


def flaky(
    events: list[dict[str, Any]],
    context: dict[str, Any],
    field: str = "flaky",
    failures: int = 1,
    poison_field: str = "poison",
) -> int:
    """Fail the first ``failures`` attempts of a batch holding a ``field`` event; poison always."""
    fail_when(events, context, poison_field, True)
    if context["attempt"] < failures and any(
        isinstance(e["value"], dict) and e["value"].get(field) for e in events
    ):
        raise HandlerFailed(f"transient failure, attempt {context['attempt']}")
    return len(events)


def append_jsonl(events: list[dict[str, Any]], context: dict[str, Any], path: str) -> int:
    """Append the events' values to a JSON-lines file (what a pipeline stage might do)."""
    with Path(path).open("a", encoding="utf-8") as out:
        for event in events:
            out.write(json.dumps({"trigger": context["trigger"], "value": event["value"]}) + "\n")
    return len(events)
