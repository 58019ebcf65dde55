"""Where proxied bytes live: the ProxyStore connectors ``dataflow.connector`` chooses from.

Each option opens a real connector for the run, and starts what it needs: a ``redis-server``
on loopback where no host is given, ProxyStore's ZeroMQ server, the fabric's containers (those
of the run's ``storage`` group, coded and placed by its ``coding`` and ``placement``). Each
also says how to count what is stored now, for the end-of-run leak check, by asking the store
itself (a folder listing, the Redis keyspace, the fabric's catalog) where it can.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field

from components.base import LoomModel, dotted_name
from components.loopback import free_port
from components.storage.protocol import StorageConfig

Stored = Callable[[], tuple[int, int]]  # → (keys, bytes) in the store now
Keys = Callable[[], list[Any]]  # → the connector's keys of every object stored now


@dataclass
class OpenConnector:
    """An opened connector, how to count what it holds, and what to stop at the end."""

    connector: Any
    stored: Stored | None  # None: the store cannot list itself; the mover's own count is used
    stack: ExitStack = field(default_factory=ExitStack)
    keys: Keys | None = None  # None: it cannot list its keys, so no orphan is swept

    def close(self) -> None:
        """Close the connector, stop its servers, remove its folders."""
        self.stack.close()


def _folder(stack: ExitStack, given: str | None, prefix: str) -> Path:
    if given is not None:
        path = Path(given).resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path
    path = Path(tempfile.mkdtemp(prefix=prefix))
    stack.callback(shutil.rmtree, path, ignore_errors=True)
    return path


class FileConnectorConfig(LoomModel):
    """Files in one folder (shared by every worker: local, or a shared filesystem)."""

    store_dir: str | None = Field(None, description="folder (default: temporary, removed)")

    def open(self) -> OpenConnector:
        """Open the connector."""
        from proxystore.connectors.file import FileConnector, FileKey

        stack = ExitStack()
        folder = _folder(stack, self.store_dir, "loom-proxystore-")
        # clear=False: a worker's close() must not delete the folder everyone shares.
        connector = FileConnector(str(folder), clear=False)
        stack.callback(connector.close)

        def stored() -> tuple[int, int]:
            files = [p for p in folder.iterdir() if p.suffix != ".ready"]
            return len(files), sum(p.stat().st_size for p in files)

        def keys() -> list[Any]:
            return [FileKey(p.name) for p in folder.iterdir() if p.suffix != ".ready"]

        return OpenConnector(connector, stored, stack, keys)


class RedisConnectorConfig(LoomModel):
    """A Redis server: started on loopback for the run, or one at ``host``:``port``."""

    host: str | None = Field(None, description="server host (default: start one on loopback)")
    port: int = Field(6379, ge=1, le=65535, description="server port (with host)")
    connect_timeout_s: float = Field(5.0, gt=0, le=300, description="give up reaching it after")

    def open(self) -> OpenConnector:
        """Start or reach the server, then open the connector."""
        import redis
        from proxystore.connectors.redis import RedisConnector, RedisKey

        stack = ExitStack()
        if self.host is None:
            from components.storage.redis_peer import redis_server

            client = stack.enter_context(redis_server(512 * 2**20))
            host, port = "127.0.0.1", int(client.connection_pool.connection_kwargs["port"])
        else:
            host, port = self.host, self.port
            wait = self.connect_timeout_s
            client = redis.Redis(
                host=host, port=port, socket_connect_timeout=wait, socket_timeout=wait
            )
            stack.callback(client.close)
            try:
                client.ping()
            except redis.RedisError as exc:
                stack.close()
                raise ConnectionError(
                    f"dataflow.redis.host={host}: cannot reach Redis at {host}:{port} within "
                    f"{self.connect_timeout_s:g} s ({type(exc).__name__}); start one, or leave "
                    "host unset to have Loom start redis-server on loopback"
                ) from None
        connector = RedisConnector(host, port, clear=False)
        stack.callback(connector.close)
        owned = self.host is None  # a server of our own holds only our keys

        def stored() -> tuple[int, int]:
            keys = list(client.scan_iter(count=1000))
            return len(keys), sum(int(client.strlen(k)) for k in keys)

        def keys() -> list[Any]:
            return [RedisKey(k.decode()) for k in client.scan_iter(count=1000)]

        if not owned:  # a server shared with others: its keys are not all ours to count
            return OpenConnector(connector, None, stack)
        return OpenConnector(connector, stored, stack, keys)


class ZmqConnectorConfig(LoomModel):
    """ProxyStore's distributed in-memory store over ZeroMQ (proxystore-ex), on loopback."""

    port: int | None = Field(None, ge=1, le=65535, description="server port (default: a free one)")
    address: str = Field("127.0.0.1", description="address the server binds")
    timeout_s: float = Field(1.0, gt=0, le=60, description="per-request timeout")

    def open(self) -> OpenConnector:
        """Start ProxyStore's ZeroMQ server and open the connector."""
        from proxystore_ex.connectors.dim.zmq import ZeroMQConnector

        stack = ExitStack()
        connector = ZeroMQConnector(
            self.port or free_port(), address=self.address, timeout=self.timeout_s
        )
        stack.callback(connector.close, kill_server=True)
        return OpenConnector(connector, None, stack)


FABRIC_GROUPS = ("storage", "coding", "placement")


class FabricConnector:
    """The run's erasure-coded storage fabric: proxies survive ``m − k`` lost containers.

    Built from the ``storage``, ``coding`` and ``placement`` groups, not a copy of them.

    Args:
        storage: The containers (links, capacities, failure rates), segment size,
            parallelism and whether chunks of a stripe may share a container.
        coding: The coder, by its config.
        placement: The placer (any, D-Rex's included), by its config.

    """

    def __init__(self, storage: StorageConfig, coding: LoomModel, placement: LoomModel) -> None:
        self.storage, self.coding, self.placement = storage, coding, placement

    def open(self) -> OpenConnector:
        """Open the containers and a fresh catalog."""
        from components.dataflow.fabric_connector import StorageFabricConnector

        stack = ExitStack()
        specs, temporary = self.storage.container_specs()
        for path in temporary:
            stack.callback(shutil.rmtree, path, ignore_errors=True)
        folder = _folder(stack, None, "loom-proxystore-fabric-")
        connector = StorageFabricConnector(
            [spec.model_dump(mode="json") for spec in specs],
            str(folder / "catalog.sqlite"),
            coding=[dotted_name(type(self.coding)), self.coding.model_dump(mode="json")],
            placement=[dotted_name(type(self.placement)), self.placement.model_dump(mode="json")],
            segment_size=int(self.storage.segment_size_mb * 2**20),
            parallelism=self.storage.parallelism,
            share_containers=self.storage.share_containers,
            owner=True,
        )
        stack.callback(_forget_memory_containers, connector)
        stack.callback(connector.close)
        return OpenConnector(connector, connector.stored, stack, connector.keys)


def _forget_memory_containers(connector: Any) -> None:
    """Free in-memory containers (folders go with their temporary parents)."""
    for container in connector.fabric.containers:
        if container.spec.url.startswith("memory://"):
            with contextlib.suppress(OSError):
                container.fs.rm(container.root, recursive=True)
