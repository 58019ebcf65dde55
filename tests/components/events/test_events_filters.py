"""Lambda-style event filters: a table of patterns × events, and malformed patterns."""

from __future__ import annotations

from typing import Any

import pytest

from components.events.filters import FilterError, compile_filter

CREATED = {
    "value": {"event_type": "created", "size": 120, "source": "sensor-3", "tags": ["a", "b"]}
}
UPDATED = {"value": {"event_type": "updated", "size": 9000, "source": "gateway-1"}}
BARE = {"value": {"event_type": "deleted"}}
NOT_JSON: dict[str, Any] = {"value": "plain text"}

TABLE: list[tuple[Any, dict[str, Any], bool]] = [
    ({"value": {"event_type": ["created"]}}, CREATED, True),
    ({"value": {"event_type": ["created"]}}, UPDATED, False),
    ({"value": {"event_type": ["created", "updated"]}}, UPDATED, True),
    ({"value": {"source": [{"prefix": "sensor-"}]}}, CREATED, True),
    ({"value": {"source": [{"prefix": "sensor-"}]}}, UPDATED, False),
    ({"value": {"source": [{"suffix": "-1"}]}}, UPDATED, True),
    ({"value": {"size": [{"numeric": [">", 100, "<=", 200]}]}}, CREATED, True),
    ({"value": {"size": [{"numeric": [">", 100, "<=", 200]}]}}, UPDATED, False),
    ({"value": {"size": [{"numeric": ["=", 9000]}]}}, UPDATED, True),
    ({"value": {"size": [{"exists": True}]}}, CREATED, True),
    ({"value": {"size": [{"exists": True}]}}, BARE, False),
    ({"value": {"size": [{"exists": False}]}}, BARE, True),
    ({"value": {"event_type": [{"anything-but": ["deleted"]}]}}, BARE, False),
    ({"value": {"event_type": [{"anything-but": ["deleted"]}]}}, CREATED, True),
    ({"value": {"event_type": [{"equals-ignore-case": "CREATED"}]}}, CREATED, True),
    ({"value": {"tags": ["b"]}}, CREATED, True),  # arrays match when any element does
    ({"value": {"tags": ["z"]}}, CREATED, False),
    # all keys must match (AND) ...
    ({"value": {"event_type": ["created"], "size": [{"numeric": [">", 1000]}]}}, CREATED, False),
    # ... any pattern of a list may (OR)
    ([{"value": {"event_type": ["nope"]}}, {"value": {"size": [120]}}], CREATED, True),
    ({"value": {"size": ["120"]}}, CREATED, False),  # a string does not equal a number
    ({"value": {"event_type": ["created"]}}, NOT_JSON, False),
    (None, NOT_JSON, True),
    ([], BARE, True),
]


@pytest.mark.parametrize(("pattern", "event", "expected"), TABLE)
def test_filter_table(pattern: Any, event: dict[str, Any], expected: bool) -> None:
    assert compile_filter(pattern)(event) is expected


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ({"value": {"size": [{"numeric": [">>", 1]}]}}, "value.size[0]"),
        ({"value": {"size": [{"numeric": [">", "x"]}]}}, "followed by a number"),
        ({"value": {"source": [{"prefix": 3}]}}, "'prefix' takes a string"),
        ({"value": {"source": [{"regex": "a.*"}]}}, "unknown matcher 'regex'"),
        ({"value": {"source": "sensor"}}, "non-empty list"),
        ({"value": {"source": []}}, "non-empty list"),
        ({"value": {"a": [{"exists": "yes"}]}}, "true or false"),
    ],
)
def test_malformed_patterns_name_the_path(pattern: Any, message: str) -> None:
    with pytest.raises(FilterError, match=message.replace("[", r"\[").replace("]", r"\]")):
        compile_filter(pattern)
