"""A real ``redis-server`` on loopback, started and stopped around a comparison."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from components.loopback import free_port


@contextmanager
def redis_server(max_object_bytes: int) -> Iterator[Any]:
    """Yield a ``redis.Redis`` client of a fresh, non-persistent server on loopback."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "peers=[redis] needs the redis-server program: apt-get install redis-server"
        )
    import redis

    port = free_port()
    bulk = max(512 * 2**20, 2 * max_object_bytes)
    with tempfile.TemporaryDirectory(prefix="loom-redis-") as folder:
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                folder,
                "--proto-max-bulk-len",
                str(bulk),
                "--client-query-buffer-limit",
                str(bulk),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=120)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server did not start on port {port}") from None
                    time.sleep(0.05)
            yield client
        finally:
            client.close()
            proc.terminate()
            proc.wait(timeout=10)
