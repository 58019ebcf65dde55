"""Which values to proxy: cheap size estimates and type rules, never a throwaway serialization.

ProxyStore's Dask plugin serializes every argument to learn its size (twice for those it then
sends by value). Here the size comes from what the object says of itself: ``nbytes`` (numpy,
memoryview, pandas via ``memory_usage``), ``len`` for bytes and strings, a shallow sum for
lists, tuples and dicts, ``sys.getsizeof`` otherwise.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from proxystore.proxy import Proxy

# Singletons cannot be proxied (proxystore PR #315) and small scalars are never worth it.
NEVER = (type(None), bool, int, float, complex)
_SHALLOW_LIMIT = 1_000  # items of a container looked at; the rest are estimated from them


def is_proxy(value: Any) -> bool:
    """Whether ``value`` is a ProxyStore proxy, read with ``type`` (``isinstance`` resolves)."""
    return type(value) is Proxy


def estimate_size(value: Any, depth: int = 3) -> int:
    """Bytes ``value`` would take to send, estimated from the object itself.

    Objects are looked into through their attributes (``__dict__`` or ``__slots__``), to
    ``depth`` levels: an object wrapping a large buffer counts as large.
    """
    kind = type(value)
    if kind is bytes or kind is bytearray or kind is str:
        return len(value)
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    if depth <= 0:
        return sys.getsizeof(value)
    if kind is list or kind is tuple:
        return _container(value, depth - 1)
    if kind is dict:
        return _container(list(value.values()), depth - 1) + _container(list(value), depth - 1)
    if isinstance(value, (*NEVER, type)):  # scalars; classes (their attributes are not data)
        return sys.getsizeof(value)
    return sys.getsizeof(value) + _container(_attributes(value), depth - 1)


def _attributes(value: Any) -> list[Any]:
    found = list(getattr(value, "__dict__", {}).values())
    for cls in type(value).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name not in ("__dict__", "__weakref__") and hasattr(value, name):
                found.append(getattr(value, name))
    return found


def _container(items: Sequence[Any], depth: int) -> int:
    head = items[:_SHALLOW_LIMIT]
    if not head:
        return sys.getsizeof(items)
    sampled = sum(estimate_size(item, depth) for item in head)
    return sampled * len(items) // len(head)


def type_name(value: Any) -> str:
    """``module.qualname`` of the value's type (``builtins`` left out)."""
    kind = type(value)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


class ProxyRule:
    """Decides, per value, whether it travels by reference.

    Args:
        threshold_bytes: Values estimated at this size or more are proxied.
        proxy_types: Only these types are proxied (``module.qualname`` or a builtin name);
            empty: any type.
        skip_types: These types never are.
        by_reference: These types always are, whatever their size, and so are lists and tuples
            of them (a scenario's own data: FL's model updates).

    """

    def __init__(
        self,
        threshold_bytes: int,
        proxy_types: Sequence[str] = (),
        skip_types: Sequence[str] = (),
        by_reference: Sequence[str] = (),
    ) -> None:
        self.threshold_bytes = threshold_bytes
        self.proxy_types = frozenset(proxy_types)
        self.skip_types = frozenset(skip_types)
        self.by_reference = frozenset(by_reference)
        self.largest_bytes = 0  # the largest value estimated here (what a threshold missed)

    def __call__(self, value: Any) -> bool:
        """Whether to proxy ``value``."""
        if is_proxy(value) or isinstance(value, NEVER):
            return False
        name = type_name(value)
        if name in self.skip_types:
            return False
        if name in self.by_reference or self._sequence_by_reference(value):
            return True
        if self.proxy_types and name not in self.proxy_types:
            return False
        size = estimate_size(value)
        self.largest_bytes = max(self.largest_bytes, size)
        return size >= self.threshold_bytes

    def _sequence_by_reference(self, value: Any) -> bool:
        """A list or tuple of by-reference values (a task's several model updates)."""
        return (
            bool(self.by_reference)
            and isinstance(value, list | tuple)
            and bool(value)
            and type_name(value[0]) in self.by_reference
        )
