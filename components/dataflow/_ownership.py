"""Ownership: a stored value with one owner and counted borrows, freed deterministically.

ProxyStore's ``OwnedProxy`` frees in ``__del__``, counts borrows per process and cannot be
used with Dask (ProxyStore 1.1's ownership docs). Here the owner lives on the
client: :meth:`Owned.borrow` hands out a proxy and counts it; a task path that ran a task with
a borrowed proxy gives it back when the task finished (``returned``), as does
:meth:`Owned.give_back` for borrows used elsewhere. The value is evicted when the owner has
released it and every borrow came back: at that moment, not whenever a garbage collector runs.
Borrowing from, or reading, a released owner raises :class:`ReferenceReleased`.
"""

from __future__ import annotations

import threading
from typing import Any, Generic, Self, TypeVar

from proxystore.proxy import Proxy
from proxystore.serialize import serialize
from proxystore.store.factory import StoreFactory

T = TypeVar("T")

_lenders: dict[Any, Owned[Any]] = {}  # key → its owner, while borrows are out
_lenders_lock = threading.Lock()


class ReferenceReleased(RuntimeError):
    """An owned value was used after its owner released it."""


def returned(key: Any) -> None:
    """A borrow of ``key`` came back (a task that held it finished); unknown keys are ignored."""
    with _lenders_lock:
        owner = _lenders.get(key)
    if owner is not None:
        owner.give_back()


class Owned(Generic[T]):
    """The owner of one stored value.

    Args:
        store: A ProxyStore ``Store`` (the data flow's).
        obj: The value; stored now.

    """

    def __init__(self, store: Any, obj: T) -> None:
        self._store = store
        self._config = store.config()
        self._type = type(obj)
        self.key = store.connector.put(serialize(obj))
        self._borrows = 0
        self._released = False
        self._lock = threading.Lock()
        self.evicted = False

    def _proxy(self) -> Proxy[T]:
        proxy: Proxy[T] = Proxy(StoreFactory(self.key, store_config=self._config))
        object.__setattr__(proxy, "__proxy_default_class__", self._type)
        return proxy

    def borrow(self) -> Proxy[T]:
        """A proxy counted as one borrow, until a task path or :meth:`give_back` returns it."""
        with self._lock:
            if self._released:
                raise ReferenceReleased(f"borrow of {self.key}: its owner already released it")
            self._borrows += 1
        with _lenders_lock:
            _lenders[self.key] = self
        return self._proxy()

    def give_back(self) -> None:
        """One borrow came back; the last one after :meth:`release` frees the value."""
        with self._lock:
            if self._borrows == 0:
                raise RuntimeError(f"{self.key}: more borrows given back than were taken")
            self._borrows -= 1
            free = self._released and self._borrows == 0
        if free:
            self._evict()

    @property
    def borrows(self) -> int:
        """Borrows not yet given back."""
        return self._borrows

    def value(self) -> T:
        """The value itself (read from the store)."""
        if self._released:
            raise ReferenceReleased(f"read of {self.key}: its owner already released it")
        return self._store.get(self.key)  # type: ignore[no-any-return]

    def release(self) -> None:
        """The owner is done: the value goes now, or when the last borrow comes back."""
        with self._lock:
            if self._released:
                return
            self._released = True
            free = self._borrows == 0
        if free:
            self._evict()

    def _evict(self) -> None:
        with _lenders_lock:
            _lenders.pop(self.key, None)
        self._store.evict(self.key)
        self.evicted = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
