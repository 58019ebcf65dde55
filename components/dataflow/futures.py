"""Distributed futures: a consumer starts before its input exists and is woken when it does.

ProxyStore's ``Store.future()`` polls every second by default and has no error channel
(ProxyStore 1.1's futures docs). A :class:`DataFuture` here is a key reserved in
a deferrable connector (file, redis, fabric) plus a way to wake the consumer
(:mod:`components.dataflow.wake`):

- Redis pub/sub (the default on the redis connector) or a topic of the event fabric (any
  connector): the consumer watches before it looks and sleeps until the producer's notice;
- without a wake channel the consumer polls, from 1 ms, doubling to at most ``poll_max_s``.

:meth:`DataFuture.set_exception` stores the producer's error under the key, and the consumer
raises :class:`FutureFailed` with it instead of waiting out its timeout. A future is
picklable: send it (or its :meth:`~DataFuture.proxy`) to any task.
"""

from __future__ import annotations

import pickle
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from proxystore.proxy import Proxy, ProxyResolveError, extract
from proxystore.serialize import deserialize, serialize
from proxystore.store import get_or_create_store
from proxystore.store.config import StoreConfig

from components.dataflow.wake import Wake

_ERROR = b"loom-future-error\n"

_stats_lock = threading.Lock()
wait_stats: Counter[str] = Counter()
"""This process's waits: ``looks`` in the store, ``woken`` by a notice, ``missed`` (a look
after a wake channel's recheck interval that found the value: a lost notice)."""


def _count(name: str) -> None:
    with _stats_lock:
        wait_stats[name] += 1


class FutureFailed(RuntimeError):
    """The producer of a future failed; the message carries its error."""


class FutureTimeout(TimeoutError):
    """No result within the consumer's timeout."""


def resolve(value: Any) -> Any:
    """The value behind a proxy (waiting for a future), with the real error if it fails.

    ProxyStore wraps whatever a factory raises in a ``ProxyResolveError`` that says only
    that the factory failed (proxystore#530/#531); the cause is raised here instead.
    """
    if type(value) is not Proxy:
        return value
    try:
        return extract(value)
    except ProxyResolveError as exc:
        raise (exc.__cause__ or exc) from None


@dataclass(frozen=True)
class DataFuture:
    """A value to come, under ``key`` in the store of ``store_config``.

    Attributes:
        store_config: The data flow's store.
        key: The reserved key.
        kind: The value's type (so a proxy of it answers ``isinstance`` unresolved).
        wake: How consumers are woken (:mod:`components.dataflow.wake`); None: they poll.
        timeout_s: How long a consumer waits.
        poll_max_s: Longest pause between polls.

    """

    store_config: StoreConfig
    key: Any
    kind: type | None = None
    wake: Wake | None = None
    timeout_s: float = 60.0
    poll_max_s: float = 0.05

    def _connector(self) -> Any:
        return get_or_create_store(self.store_config, register=True).connector

    def set_result(self, obj: Any) -> None:
        """Store the value and wake the consumers."""
        self._set(serialize(obj))

    def set_exception(self, exc: BaseException) -> None:
        """Store the producer's error: consumers raise it as :class:`FutureFailed`."""
        self._set(_ERROR + pickle.dumps((type(exc).__name__, str(exc))))

    def _set(self, data: bytes) -> None:
        self._connector().set(self.key, data)
        if self.wake is not None:
            self.wake.notify(self.key)

    def done(self) -> bool:
        """Whether the value (or an error) is there."""
        return bool(self._connector().exists(self.key))

    def result(self, timeout_s: float | None = None) -> Any:
        """Wait for the value; raise :class:`FutureFailed` if the producer failed."""
        limit = self.timeout_s if timeout_s is None else timeout_s
        data = self._wait_polling(limit) if self.wake is None else self._wait_woken(limit)
        if data.startswith(_ERROR):
            name, message = pickle.loads(data[len(_ERROR) :])
            raise FutureFailed(f"the producer of {self.key} failed: {name}: {message}")
        return deserialize(data)

    def _wait_polling(self, limit: float) -> bytes:
        connector, deadline, pause = self._connector(), time.monotonic() + limit, 0.001
        while True:
            _count("looks")
            data = connector.get(self.key)
            if data is not None:
                return bytes(data)
            if time.monotonic() >= deadline:
                raise FutureTimeout(f"no value for {self.key} within {limit:g} s")
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, self.poll_max_s)

    def _wait_woken(self, limit: float) -> bytes:
        assert self.wake is not None
        connector, deadline = self._connector(), time.monotonic() + limit
        with self.wake.watching(self.key) as sleep:  # before looking: a later set wakes us
            woken = True
            while True:
                _count("looks")
                data = connector.get(self.key)
                if data is not None:
                    if not woken:
                        _count("missed")
                    return bytes(data)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise FutureTimeout(f"no value for {self.key} within {limit:g} s")
                woken = sleep(left)
                if woken:
                    _count("woken")

    def proxy(self) -> Proxy[Any]:
        """A proxy that resolves to the value (waiting for it) on first use."""
        proxy: Proxy[Any] = Proxy(_Resolve(self))
        if self.kind is not None:
            object.__setattr__(proxy, "__proxy_default_class__", self.kind)
        return proxy


@dataclass(frozen=True)
class _Resolve:
    """A future proxy's factory (picklable); ``key`` lets a task path recognise it."""

    future: DataFuture

    @property
    def key(self) -> Any:
        return self.future.key

    def __call__(self) -> Any:
        return self.future.result()
