"""Storage fixtures: a real S3 server (moto's threaded server) on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from components.loopback import free_port


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """An S3 API on loopback; s3fs reaches it through endpoint_url and test credentials."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ["AWS_ACCESS_KEY_ID"] = "loom-test"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "loom-test-secret"
    yield f"http://127.0.0.1:{port}"
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
