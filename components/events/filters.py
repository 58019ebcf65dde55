"""Event filters in the style of AWS Lambda's event-source filter patterns (as Octopus uses).

A pattern is a nested mapping whose leaves are lists of matchers; all keys must match (AND)
and any matcher in a list may match (OR). A filter is a list of patterns, any of which may
match. Matchers: a literal (string, number, bool, null), ``{"prefix": s}``,
``{"suffix": s}``, ``{"numeric": [">", 0, "<=", 5]}``, ``{"exists": bool}``,
``{"anything-but": [...]}`` and ``{"equals-ignore-case": s}``. Example:
``{"value": {"event_type": ["created"], "size": [{"numeric": [">", 100]}]}}``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Matcher = Callable[[bool, Any], bool]  # (present, value) → matched
Predicate = Callable[[Mapping[str, Any]], bool]

_MISSING = object()
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
MATCHERS = ("prefix", "suffix", "numeric", "exists", "anything-but", "equals-ignore-case")


class FilterError(ValueError):
    """A malformed pattern; the message names where it is wrong."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _literal(expected: Any) -> Matcher:
    if _is_number(expected):
        return lambda present, v: present and _is_number(v) and v == expected
    return lambda present, v: present and type(v) is type(expected) and v == expected


def _numeric(spec: Any, where: str) -> Matcher:
    if not isinstance(spec, list) or not spec or len(spec) % 2:
        raise FilterError(f"{where}: 'numeric' takes pairs like ['>', 0, '<=', 5], got {spec!r}")
    checks: list[tuple[Callable[[Any, Any], bool], float]] = []
    for op, bound in zip(spec[::2], spec[1::2], strict=True):
        if op not in _COMPARISONS or not _is_number(bound):
            raise FilterError(
                f"{where}: 'numeric' comparison {op!r} {bound!r} is invalid; "
                f"use one of {', '.join(_COMPARISONS)} followed by a number"
            )
        checks.append((_COMPARISONS[op], bound))
    return lambda present, v: (
        present and _is_number(v) and all(cmp(v, bound) for cmp, bound in checks)
    )


def _string_rule(name: str, arg: Any, where: str) -> Matcher:
    if not isinstance(arg, str):
        raise FilterError(f"{where}: {name!r} takes a string, got {arg!r}")
    if name == "prefix":
        return lambda present, v: present and isinstance(v, str) and v.startswith(arg)
    if name == "suffix":
        return lambda present, v: present and isinstance(v, str) and v.endswith(arg)
    folded = arg.casefold()
    return lambda present, v: present and isinstance(v, str) and v.casefold() == folded


def _matcher(spec: Any, where: str) -> Matcher:
    if not isinstance(spec, Mapping):
        if isinstance(spec, list):
            raise FilterError(f"{where}: a matcher cannot be a list, got {spec!r}")
        return _literal(spec)
    if len(spec) != 1:
        raise FilterError(f"{where}: a matcher has exactly one rule, got {sorted(spec)}")
    ((name, arg),) = spec.items()
    if name in ("prefix", "suffix", "equals-ignore-case"):
        return _string_rule(name, arg, where)
    if name == "numeric":
        return _numeric(arg, where)
    if name == "exists":
        if not isinstance(arg, bool):
            raise FilterError(f"{where}: 'exists' takes true or false, got {arg!r}")
        return lambda present, v: present == arg
    if name == "anything-but":
        values = arg if isinstance(arg, list) else [arg]
        excluded = [_literal(x) for x in values]
        return lambda present, v: present and not any(m(True, v) for m in excluded)
    raise FilterError(f"{where}: unknown matcher {name!r}; use one of: {', '.join(MATCHERS)}")


def _compile(pattern: Mapping[str, Any], where: str) -> Predicate:
    rules: list[tuple[str, Predicate | list[Matcher]]] = []
    for key, spec in pattern.items():
        here = f"{where}.{key}" if where else str(key)
        if isinstance(spec, Mapping):
            rules.append((key, _compile(spec, here)))
        elif isinstance(spec, list) and spec:
            rules.append((key, [_matcher(item, f"{here}[{i}]") for i, item in enumerate(spec)]))
        else:
            raise FilterError(
                f"{here}: expected a mapping or a non-empty list of matchers, got {spec!r}"
            )

    def match(record: Mapping[str, Any]) -> bool:
        for key, rule in rules:
            value = record.get(key, _MISSING) if isinstance(record, Mapping) else _MISSING
            if isinstance(rule, list):
                present = value is not _MISSING
                if present and isinstance(value, list):  # arrays match if any element does
                    if not any(m(True, item) for item in value for m in rule):
                        return False
                elif not any(m(present, value) for m in rule):
                    return False
            elif not (isinstance(value, Mapping) and rule(value)):
                return False
        return True

    return match


def compile_filter(patterns: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None) -> Predicate:
    """A predicate over event records (see ``Event.as_record``); None or ``[]`` matches all.

    Raises:
        FilterError: A pattern is malformed; the message names the key path.

    """
    if patterns is None:
        return lambda record: True
    if isinstance(patterns, Mapping):
        patterns = [patterns]
    if not patterns:
        return lambda record: True
    compiled = []
    for i, pattern in enumerate(patterns):
        if not isinstance(pattern, Mapping) or not pattern:
            raise FilterError(f"filter[{i}]: a pattern is a non-empty mapping, got {pattern!r}")
        compiled.append(_compile(pattern, ""))
    return lambda record: any(p(record) for p in compiled)
