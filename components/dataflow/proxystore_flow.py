"""``dataflow=proxystore``: large inputs and results travel as ProxyStore proxies.

Built on the real ``proxystore`` library (its ``Store``, connectors, ``StoreFactory`` and
``Proxy``), adding what it lacks for a task graph (as ProxyStore 1.1 documents them):

- **Proxies stay unresolved on the client.** A proxy is made with its class cached and no
  target, and the task path ships arguments in an opaque box, so neither Dask's argument
  parsing nor its pickler touches it: the client's store sees no get.
- **Eviction tied to the graph.** Each key has a count of consumers still to finish: the
  task it was sent to, or the children of the task that produced it. When the last one
  finishes (whatever its outcome) the key is evicted; a value no task consumes is kept
  until the task path closes, so the caller can read it. Nothing depends on ``__del__``.
- **Serialize once.** Whether to proxy is decided from a size estimate (``nbytes``,
  ``len``), and the same object sent to many tasks is stored once.
- **Resolved before the task body.** The worker hook fetches and deserializes proxied
  inputs itself (C-implemented APIs such as ``hashlib`` reject proxies) and times each step
  per task, in milliseconds (ProxyStore's own ``factory.*`` timings are nanoseconds in
  ``_ms`` fields), with the process that did it.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self, cast

from proxystore.proxy import Proxy, get_factory
from proxystore.serialize import deserialize, serialize
from proxystore.store import Store, get_or_create_store
from proxystore.store.config import StoreConfig
from proxystore.store.factory import StoreFactory
from pydantic import Field, PrivateAttr, field_validator

from components.base import ComponentConfig
from components.dataflow._connectors import (
    FABRIC_GROUPS,
    FabricConnector,
    FileConnectorConfig,
    OpenConnector,
    RedisConnectorConfig,
    ZmqConnectorConfig,
)
from components.dataflow._ownership import Owned, returned
from components.dataflow._sizes import ProxyRule, is_proxy
from components.dataflow.futures import DataFuture
from components.dataflow.protocol import DataFlow, DataFlowConfig
from components.dataflow.wake import RedisWake, Wake
from components.faults.protocol import Fault, Injected
from components.runtime.protocols import DataMover, WorkerHook
from components.storage.container import container_fault_targets, inject_container_fault
from components.storage.protocol import StorageConfig

Eviction = Literal["refcount", "on_close"]


def unresolved_proxy(store_config: StoreConfig, key: Any, obj: Any) -> Proxy[Any]:
    """A proxy of ``obj`` stored under ``key`` that holds no target and knows its class.

    ``isinstance`` then reads the cached class instead of resolving; the hash is not
    cached (hashing a large object costs what it would save).
    """
    proxy: Proxy[Any] = Proxy(StoreFactory(key, store_config=store_config))
    object.__setattr__(proxy, "__proxy_default_class__", type(obj))
    return proxy


def _factory(proxy: Any) -> StoreFactory[Any, Any]:
    return cast(StoreFactory[Any, Any], get_factory(proxy))


def _stored(value: Any) -> bool:
    return is_proxy(value) and isinstance(get_factory(value), StoreFactory)


def _key(proxy: Any) -> Any:
    return _factory(proxy).key


# Connectors whose client is one socket (ZeroMQ's REQ): one request at a time per process.
_SINGLE_SOCKET = ("ZeroMQConnector",)
_socket_locks: dict[int, threading.Lock] = {}
_socket_locks_guard = threading.Lock()


def _serial(connector: Any) -> AbstractContextManager[Any]:
    """A lock around a connector's requests where its client is not thread-safe."""
    if type(connector).__name__ not in _SINGLE_SOCKET:
        return nullcontext()
    with _socket_locks_guard:
        return _socket_locks.setdefault(id(connector), threading.Lock())


class _Cache:
    """A thread-safe LRU of deserialized inputs, per store and process.

    Not the store's own: ProxyStore 1.1's ``LRUCache.set`` of a key already cached (two
    threads resolving one key) lists it twice, and a later eviction raises ``KeyError``.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> tuple[bool, Any]:
        with self._lock:
            if key not in self._items:
                return False, None
            self._items.move_to_end(key)
            return True, self._items[key]

    def put(self, key: Any, obj: Any) -> None:
        if self.size == 0:
            return
        with self._lock:
            self._items[key] = obj
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


_caches: dict[str, _Cache] = {}


def _cache(config: StoreConfig) -> _Cache:
    with _socket_locks_guard:
        return _caches.setdefault(config.name, _Cache(config.cache_size))


def _in_dask_worker() -> bool:
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return False
    try:
        distributed.get_worker()
    except ValueError:
        return False
    return True


def _process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class ProxyWorker:
    """The worker hook: resolve proxied inputs, run the task, proxy a large result."""

    store_config: StoreConfig
    threshold_bytes: int
    proxy_types: tuple[str, ...] = ()
    skip_types: tuple[str, ...] = ()
    by_reference: tuple[str, ...] = ()

    def __call__(self, fn: Any, args: tuple[Any, ...]) -> tuple[Any, dict[str, Any]]:
        """Run ``fn`` on resolved ``args``; return its value (or a proxy) and the record."""
        moved: dict[str, Any] = {
            "process": _process(),
            "bytes_in": 0,
            "get_ms": 0.0,
            "deserialize_ms": 0.0,
            "cache_hits": 0,
            "proxied_in": 0,
        }
        if self.store_config.connector.kind.endswith("ZeroMQConnector") and _in_dask_worker():
            raise RuntimeError(
                "dataflow.connector=zmq does not work on Dask workers: proxystore-ex's ZeroMQ "
                "client aborts the worker process (libzmq assertion !_more, fq.cpp:80); use "
                "file, redis or fabric with executor=dask"
            )
        # Stored values are fetched now; a future's proxy is left for the task to resolve
        # when it needs the value (it may start before the value exists).
        real = [self._resolve(a, moved) if _stored(a) else a for a in args]
        value = fn(*real)
        rule = ProxyRule(self.threshold_bytes, self.proxy_types, self.skip_types, self.by_reference)
        if not rule(value):
            return value, moved
        store = get_or_create_store(self.store_config, register=True)
        start = time.perf_counter()
        data = serialize(value)
        serialized = time.perf_counter()
        with _serial(store.connector):
            key = store.connector.put(data)
        moved.update(
            serialize_ms=1e3 * (serialized - start),
            put_ms=1e3 * (time.perf_counter() - serialized),
            bytes_out=len(data),
            proxied_out=1,
        )
        return unresolved_proxy(self.store_config, key, value), moved

    @staticmethod
    def _resolve(proxy: Any, moved: dict[str, Any]) -> Any:
        factory = _factory(proxy)
        store = get_or_create_store(factory.store_config, register=True)
        key = factory.key
        moved["proxied_in"] += 1
        cache = _cache(factory.store_config)
        hit, obj = cache.get(key)
        if hit:
            moved["cache_hits"] += 1
            return obj
        start = time.perf_counter()
        with _serial(store.connector):
            data = store.connector.get(key)
        fetched = time.perf_counter()
        if data is None:
            raise KeyError(f"a proxied input ({key}) is no longer in the store: evicted or lost")
        obj = deserialize(data)
        moved["get_ms"] += 1e3 * (fetched - start)
        moved["deserialize_ms"] += 1e3 * (time.perf_counter() - fetched)
        moved["bytes_in"] += len(data)
        if factory.evict:  # a single-consumer proxy (a stream item): gone once read
            with _serial(store.connector):
                store.connector.evict(key)
        else:
            cache.put(key, obj)
        return obj


class ProxyMover:
    """The client side of one task path: sends proxies, counts consumers, evicts."""

    def __init__(
        self,
        store: Store[Any],
        rule: ProxyRule,
        worker: ProxyWorker,
        eviction: Eviction,
        seen: set[Any] | None = None,
        orphans: Callable[[], list[Any]] | None = None,
    ) -> None:
        self.store, self.rule, self.eviction = store, rule, eviction
        self.seen = set() if seen is None else seen  # every key met, for the leak check
        self._orphans = orphans
        self.orphans_evicted = 0
        self.worker: WorkerHook | None = worker
        self._config = store.config()
        self._lock = threading.Lock()
        self._counts: dict[Any, int] = {}
        self._sent: dict[int, tuple[Any, Proxy[Any], Any]] = {}  # id(obj) → key, proxy, obj
        self.evicted = 0

    def send(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """Large arguments become proxies, each counting this task as one more consumer."""
        return tuple(self._send(a) if self.rule(a) else a for a in args)

    def _send(self, obj: Any) -> Proxy[Any]:
        with self._lock:
            known = self._sent.get(id(obj))
            if known is not None and known[2] is obj and known[0] in self._counts:
                self._counts[known[0]] += 1
                return known[1]
        data = serialize(obj)
        with _serial(self.store.connector):
            key = self.store.connector.put(data)
        proxy = unresolved_proxy(self._config, key, obj)
        with self._lock:
            self._counts[key] = 1
            self._sent[id(obj)] = (key, proxy, obj)
            self.seen.add(key)
        return proxy

    def retain(self, value: Any, count: int) -> None:
        """``value`` (if a proxy) has ``count`` more consumers; 0 keeps it until the end."""
        if is_proxy(value):
            key = _key(value)
            with self._lock:
                self._counts[key] = self._counts.get(key, 0) + count
                self.seen.add(key)

    def release(self, value: Any) -> None:
        """One consumer of ``value`` finished: the last one evicts it.

        A proxy this path did not make or count (a borrowed reference, a future) goes back
        to its owner instead.
        """
        if not is_proxy(value):
            return
        key = _key(value)
        with self._lock:
            counted = key in self._counts
            if counted:
                if self.eviction != "refcount":
                    return
                left = self._counts[key] - 1
                if left > 0:
                    self._counts[key] = left
                    return
                self._forget(key)
        if counted:
            self._evict(key)
        else:
            returned(key)

    def discard(self) -> None:
        """Evict every key still counted (values no task consumed, or ``on_close``).

        Then the orphans: values a worker stored that no task result ever carried back to
        the client, because the worker died between its put and its return. Only the
        store can say they exist; a store that cannot list its keys keeps them.
        """
        with self._lock:
            keys = list(self._counts)
            for key in keys:
                self._forget(key)
        for key in keys:
            self._evict(key)
        if self._orphans is not None:
            for key in self._orphans():
                self._evict(key)
                self.orphans_evicted += 1

    def _forget(self, key: Any) -> None:
        self._counts.pop(key, None)
        for ident in [i for i, (k, _, _) in self._sent.items() if k == key]:
            del self._sent[ident]

    def _evict(self, key: Any) -> None:
        with _serial(self.store.connector):
            self.store.evict(key)
        self.evicted += 1

    def held(self) -> int:
        """Keys counted now."""
        with self._lock:
            return len(self._counts)


class ProxyStoreFlow:
    """The opened flow: the connector (and its server), the client's store, movers."""

    name = "proxystore"

    def __init__(self, config: ProxyStoreConfig) -> None:
        self.config = config
        self._open: OpenConnector | None = None
        self._store: Store[Any] | None = None
        self._keys_seen: set[Any] = set()

    @property
    def store(self) -> Store[Any]:
        """The client's store (opened)."""
        if self._store is None:
            raise RuntimeError("the proxystore data flow is not open")
        return self._store

    def __enter__(self) -> Self:
        cfg = self.config
        self._open = cfg.connector_config().open()
        try:
            self._store = Store(
                f"loom-dataflow-{uuid.uuid4().hex[:8]}",
                self._open.connector,
                cache_size=cfg.cache_size,
                metrics=True,
                populate_target=False,
                register=True,
            )
        except BaseException:
            self._open.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._store is not None:
            from proxystore.store import unregister_store

            unregister_store(self._store)
            self._store = None
        if self._open is not None:
            self._open.close()
            self._open = None

    def mover(self, by_reference: Sequence[str] = ()) -> DataMover:
        """A fresh mover for one task path (its counts are its own).

        Args:
            by_reference: Types (``module.qualname``) always moved by reference, whatever
                their size; ``dataflow.skip_types`` still wins.

        """
        cfg = self.config
        worker = ProxyWorker(
            self.store.config(),
            cfg.threshold_bytes,
            tuple(cfg.proxy_types),
            tuple(cfg.skip_types),
            tuple(by_reference),
        )
        rule = ProxyRule(cfg.threshold_bytes, cfg.proxy_types, cfg.skip_types, by_reference)
        return ProxyMover(
            self.store, rule, worker, cfg.eviction, self._keys_seen, self._orphans_since()
        )

    def _orphans_since(self) -> Callable[[], list[Any]] | None:
        """Lists the keys stored from now on that no mover, future or owner has met."""
        assert self._open is not None
        listed = self._open.keys
        if listed is None:
            return None
        connector = self.store.connector
        before = frozenset(listed())  # not ours to judge: stored before this path opened

        def orphans() -> list[Any]:
            with _serial(connector):
                now = listed()
            return [k for k in now if k not in before and k not in self._keys_seen]

        return orphans

    def stored(self) -> tuple[int, int]:
        """Keys and bytes in the store now, as the store itself lists them."""
        assert self._open is not None
        if self._open.stored is not None:
            return self._open.stored()
        # The store cannot list itself (zmq): ask it about every key the movers met.
        connector = self.store.connector
        with _serial(connector):
            left = [k for k in list(self._keys_seen) if connector.exists(k)]
        return len(left), sum(int(getattr(k, "size", 0)) for k in left)

    def store_metrics(self) -> dict[str, float]:
        """The fabric connector's counters over every process (``data_fabric_*``); else none.

        ``data_fabric_bytes_moved_<container>`` is what every process wrote to and read from
        that container, over its link.
        """
        assert self._open is not None
        counts = getattr(self._open.connector, "counts", None)
        if counts is None:  # only the fabric connector counts
            return {}
        metrics = {f"data_fabric_{name}": float(n) for name, n in counts().items()}
        for name, moved in self._open.connector.bytes_moved().items():
            metrics[f"data_fabric_bytes_moved_{name}"] = float(moved)
        return metrics

    # -- faults: the fabric connector's containers ---------------------------------------------

    def _fabric_containers(self) -> list[Any]:
        fabric = getattr(self._open.connector if self._open else None, "fabric", None)
        return list(getattr(fabric, "containers", []))

    def fault_targets(self, kind: str) -> list[str]:
        """The fabric connector's containers for container and link faults (else none)."""
        return container_fault_targets(self._fabric_containers(), kind)

    def inject(self, kind: str, targets: Sequence[str], fault: Fault) -> Injected:
        """A container or link fault on the fabric connector's containers (same names)."""
        done = inject_container_fault(self._fabric_containers(), kind, targets, fault)
        done.detail = f"fabric connector: {done.detail}"
        return done

    def future(
        self,
        kind: type | None = None,
        timeout_s: float = 60.0,
        wake: Wake | Literal["auto"] | None = "auto",
    ) -> DataFuture:
        """A value to come (see :mod:`components.dataflow.futures`).

        Args:
            kind: The value's type, so its proxy answers ``isinstance`` unresolved.
            timeout_s: How long a consumer waits.
            wake: How consumers are woken. ``auto``: Redis pub/sub on the redis connector,
                polling on the others; None: polling; an
                :class:`~components.dataflow.wake.EventsWake`: through the event fabric.

        """
        connector = self.store.connector
        if not hasattr(connector, "new_key"):
            raise ValueError(
                f"dataflow.connector={self.config.connector}: futures need a connector that can "
                "reserve a key (file, redis or fabric)"
            )
        key = connector.new_key()
        self._keys_seen.add(key)
        if wake == "auto":
            redis = self.config.connector == "redis"
            wake = RedisWake(connector.hostname, int(connector.port)) if redis else None
        return DataFuture(self.store.config(), key, kind, wake, timeout_s)

    def owned(self, obj: Any) -> Owned[Any]:
        """Store ``obj`` under an owner (see :mod:`components.dataflow._ownership`)."""
        owner = Owned(self.store, obj)
        self._keys_seen.add(owner.key)
        return owner

    def client_gets(self) -> int:
        """Gets the client's store made (a proxy resolved on the client)."""
        times = self.store.metrics.aggregate_times() if self.store.metrics else {}
        return sum(t.count for name, t in times.items() if name == "store.get")


class ProxyStoreConfig(DataFlowConfig):
    """Pass large inputs and results as ProxyStore proxies over a connector."""

    kind: Literal["proxystore"] = "proxystore"
    connector: Literal["file", "redis", "zmq", "fabric"] = Field(
        "file", description="where proxied bytes live: file, redis, zmq, fabric"
    )
    threshold_bytes: int = Field(
        100_000, ge=0, description="proxy values estimated at this many bytes or more"
    )
    proxy_types: list[str] = Field(
        default_factory=list, description="only these types (module.qualname); empty: any"
    )
    skip_types: list[str] = Field(default_factory=list, description="never these types")
    cache_size: int = Field(16, ge=0, le=100_000, description="objects cached per process")
    eviction: Eviction = Field(
        "refcount", description="refcount: when the last consumer finished; on_close: at the end"
    )
    file: FileConnectorConfig = Field(default_factory=FileConnectorConfig)
    redis: RedisConnectorConfig = Field(default_factory=RedisConnectorConfig)
    zmq: ZmqConnectorConfig = Field(default_factory=ZmqConnectorConfig)

    optional_reads: ClassVar[Mapping[str, str]] = dict.fromkeys(
        FABRIC_GROUPS, "dataflow.connector=fabric"
    )
    # The fabric connector's groups, kept by joined(): never dumped, so never hashed twice.
    _fabric_groups: dict[str, ComponentConfig] | None = PrivateAttr(None)

    @field_validator("proxy_types", "skip_types")
    @classmethod
    def _never_singletons(cls, value: list[str]) -> list[str]:
        bad = [t for t in value if t in {"NoneType", "bool"}]
        if bad:
            raise ValueError(f"{bad}: None and booleans cannot be proxied")
        return value

    def also_needs(self) -> tuple[str, ...]:
        """The fabric connector is the run's storage fabric: its three groups."""
        return FABRIC_GROUPS if self.connector == "fabric" else ()

    def joined(self, groups: Mapping[str, ComponentConfig]) -> Self:
        """Keep the storage groups the fabric connector builds its store from."""
        if self.connector != "fabric":
            return self
        joined = self.model_copy()
        joined._fabric_groups = {g: groups[g] for g in FABRIC_GROUPS}
        return joined

    def check_with(self, groups: Mapping[str, ComponentConfig]) -> list[str]:
        """Connectors that cannot serve the run's executor, refused before anything runs."""
        executor = groups.get("executor")
        if self.connector == "zmq" and executor is not None and executor.kind == "dask":
            return [
                "dataflow.connector=zmq cannot run with executor=dask: proxystore-ex's ZeroMQ "
                "client aborts Dask worker processes (libzmq assertion !_more, fq.cpp:80); "
                "choose dataflow.connector=file, redis or fabric, or executor=thread or process"
            ]
        storage = groups.get("storage")
        if self.connector == "fabric" and isinstance(storage, StorageConfig):
            problems = storage.fits_stripes(groups["coding"], groups["placement"])
            if problems:
                return problems
        in_memory = isinstance(storage, StorageConfig) and not storage.shared_between_processes()
        if self.connector == "fabric" and in_memory and getattr(executor, "kind", "") != "thread":
            assert storage is not None
            return [
                f"dataflow.connector=fabric with storage={storage.kind}: in-memory containers "
                f"live in one process, and executor={getattr(executor, 'kind', None)} runs tasks "
                "in others, which would find no chunks; choose storage=local or s3 (or mixed "
                "without memory:// containers), or executor=thread"
            ]
        return []

    def connector_config(
        self,
    ) -> FileConnectorConfig | RedisConnectorConfig | ZmqConnectorConfig | FabricConnector:
        """The chosen connector's settings."""
        if self.connector != "fabric":
            chosen: FileConnectorConfig | RedisConnectorConfig | ZmqConnectorConfig = getattr(
                self, self.connector
            )
            return chosen
        if self._fabric_groups is None:
            raise ValueError(
                "dataflow.connector=fabric builds its store from the run's storage, coding and "
                "placement groups: validate the job (or call joined() with them) before building"
            )
        storage = self._fabric_groups["storage"]
        assert isinstance(storage, StorageConfig)
        return FabricConnector(
            storage, self._fabric_groups["coding"], self._fabric_groups["placement"]
        )

    def build(self) -> DataFlow:
        """Create the data flow (opened by the engine)."""
        return ProxyStoreFlow(self)
