"""Distributed futures: a consumer starts before its input exists and is woken when it does.

ProxyStore's ``Store.future()`` polls every second by default and has no error channel
(``../shared/reference/proxystore.md``, 1.4). A :class:`DataFuture` here is a key reserved in
a deferrable connector (file, redis, fabric) plus a way to wake the consumer:

- on Redis, the producer publishes on ``loom-future:<key>`` after writing, and the consumer
  (subscribed before it looks) wakes on the message: no polling;
- elsewhere the consumer polls, from 1 ms, doubling to at most ``poll_max_s``.

:meth:`DataFuture.set_exception` stores the producer's error under the key, and the consumer
raises :class:`FutureFailed` with it instead of waiting out its timeout. A future is
picklable: send it (or its :meth:`~DataFuture.proxy`) to any task.
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass
from typing import Any

from proxystore.proxy import Proxy, ProxyResolveError, extract
from proxystore.serialize import deserialize, serialize
from proxystore.store import get_or_create_store
from proxystore.store.config import StoreConfig

_ERROR = b"loom-future-error\n"


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
        redis: ``(host, port)`` to wake consumers by pub/sub; None: poll.
        timeout_s: How long a consumer waits.
        poll_max_s: Longest pause between polls.

    """

    store_config: StoreConfig
    key: Any
    kind: type | None = None
    redis: tuple[str, int] | None = None
    timeout_s: float = 60.0
    poll_max_s: float = 0.05

    @property
    def channel(self) -> str:
        """The pub/sub channel of this future."""
        return f"loom-future:{self.key}"

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
        if self.redis is not None:
            import redis

            client = redis.Redis(host=self.redis[0], port=self.redis[1])
            try:
                client.publish(self.channel, b"1")
            finally:
                client.close()

    def done(self) -> bool:
        """Whether the value (or an error) is there."""
        return bool(self._connector().exists(self.key))

    def result(self, timeout_s: float | None = None) -> Any:
        """Wait for the value; raise :class:`FutureFailed` if the producer failed."""
        limit = self.timeout_s if timeout_s is None else timeout_s
        data = self._wait_notified(limit) if self.redis is not None else self._wait_polling(limit)
        if data.startswith(_ERROR):
            name, message = pickle.loads(data[len(_ERROR) :])
            raise FutureFailed(f"the producer of {self.key} failed: {name}: {message}")
        return deserialize(data)

    def _wait_polling(self, limit: float) -> bytes:
        connector, deadline, pause = self._connector(), time.monotonic() + limit, 0.001
        while True:
            data = connector.get(self.key)
            if data is not None:
                return bytes(data)
            if time.monotonic() >= deadline:
                raise FutureTimeout(f"no value for {self.key} within {limit:g} s")
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, self.poll_max_s)

    def _wait_notified(self, limit: float) -> bytes:
        import redis

        assert self.redis is not None
        connector, deadline = self._connector(), time.monotonic() + limit
        client = redis.Redis(host=self.redis[0], port=self.redis[1])
        pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(self.channel)  # before looking: a set after this look wakes us
            while True:
                data = connector.get(self.key)
                if data is not None:
                    return bytes(data)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise FutureTimeout(f"no value for {self.key} within {limit:g} s")
                pubsub.get_message(timeout=left)
        finally:
            pubsub.close()
            client.close()

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
