"""Local services that stay up between runs: a Prefect server and an MLflow server.

``loom up`` starts both on loopback in the background, with their stores under the results
folder (the MLflow server serves the same ``results/mlflow.db`` the local store uses, so runs
from before and after are in one place). Every later ``loom run`` finds them through
``results/services/services.json`` and uses them without settings: no throwaway Prefect API
to boot, no MLflow store to open in the run's own process. ``loom down`` stops them;
``loom status`` and ``loom ui`` say where they are. Without them, runs work as before.

Nothing here imports Prefect or MLflow: the servers run as their own commands.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from components.loopback import free_port
from framework.errors import LoomError

STARTUP_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Service:
    """One started server: its process (group) and its address."""

    name: str
    pid: int
    url: str  # the UI's address
    health: str  # answers 200 when the server is up
    log: str

    def alive(self) -> bool:
        """Whether its process still runs."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return _not_a_zombie(self.pid)

    def answers(self, timeout_s: float = 2.0) -> bool:
        """Whether it answers its health check now."""
        try:
            with urllib.request.urlopen(self.health, timeout=timeout_s) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False


def _not_a_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return True  # no /proc: trust the signal


def state_dir(results_dir: Path) -> Path:
    """Where the services keep their state, stores and logs."""
    return results_dir / "services"


def _state_file(results_dir: Path) -> Path:
    return state_dir(results_dir) / "services.json"


def read(results_dir: Path) -> dict[str, Service]:
    """The services ``loom up`` recorded (alive or not)."""
    path = _state_file(results_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {name: Service(**fields) for name, fields in data.items()}


def running(results_dir: Path) -> dict[str, Service]:
    """The recorded services whose processes still run (a run uses these)."""
    return {name: s for name, s in read(results_dir).items() if s.alive()}


def prefect_api_url(service: Service) -> str:
    """The Prefect API address behind a Prefect server's UI address."""
    return f"{service.url.rstrip('/')}/api"


def _prefect_argv(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "prefect",
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def _mlflow_argv(port: int, results_dir: Path) -> list[str]:
    results = results_dir.resolve()
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{results / 'mlflow.db'}",
        "--artifacts-destination",
        str(results / "mlartifacts"),
    ]


def _start(name: str, argv: list[str], url: str, health: str, folder: Path) -> Service:
    log = folder / f"{name}.log"
    env = {
        **os.environ,
        "PREFECT_HOME": str((folder / "prefect-home").resolve()),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    env.pop("PREFECT_API_URL", None)  # the server is the API; it must not look for another
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # outlives this command; stopped as a group by loom down
        )
    return Service(name, process.pid, url, health, str(log.resolve()))


def _wait_up(services: list[Service], timeout_s: float, folder: Path) -> None:
    deadline = time.monotonic() + timeout_s
    waiting = list(services)
    while waiting:
        for service in list(waiting):
            if not service.alive():
                tail = Path(service.log).read_text(errors="replace")[-1500:]
                raise LoomError(f"the {service.name} server exited while starting:\n{tail}")
            if service.answers():
                waiting.remove(service)
        if waiting and time.monotonic() > deadline:
            names = ", ".join(s.name for s in waiting)
            raise LoomError(f"{names} not up within {timeout_s:.0f} s (logs: {folder})")
        if waiting:
            time.sleep(0.3)


def up(results_dir: Path, timeout_s: float = STARTUP_TIMEOUT_S) -> dict[str, Service]:
    """Start whichever service is not running; wait until both answer; record them."""
    folder = state_dir(results_dir)
    folder.mkdir(parents=True, exist_ok=True)
    services = running(results_dir)
    started = []
    if "prefect" not in services:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        started.append(
            _start("prefect", _prefect_argv(port), url, f"{url}/api/health", folder.resolve())
        )
    if "mlflow" not in services:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        argv = _mlflow_argv(port, results_dir)
        started.append(_start("mlflow", argv, url, f"{url}/health", folder.resolve()))
    services |= {s.name: s for s in started}
    _write(results_dir, services)  # recorded at once, so loom down can stop a slow start
    try:
        _wait_up(started, timeout_s, folder)
    except BaseException:
        down(results_dir)
        raise
    from framework import spare

    if spare.waiting(folder) is None:
        spare.start(folder)
    return services


def _write(results_dir: Path, services: dict[str, Service]) -> None:
    path = _state_file(results_dir)
    path.write_text(json.dumps({n: asdict(s) for n, s in services.items()}, indent=2) + "\n")


def down(results_dir: Path) -> list[str]:
    """Stop every recorded service (its whole process group); the names that were running."""
    from framework import spare

    stopped = ["spare"] if spare.stop(state_dir(results_dir)) else []
    for service in read(results_dir).values():
        if service.alive():
            stopped.append(service.name)
            _stop_group(service.pid)
    _state_file(results_dir).unlink(missing_ok=True)
    return stopped


def _stop_group(pid: int) -> None:
    """SIGTERM the group the service leads, then SIGKILL what is left after a grace period."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        _reap(pid)
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    _reap(pid)


def _reap(pid: int) -> None:
    """Collect the leader's exit status where this process started it (tests, loom up)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


class ThrowawayPrefect:
    """The Prefect API server a run without ``loom up`` needs, started as the run starts.

    Prefect starts the same server (uvicorn over its SQLite database) when its client first
    needs one, after ``import prefect``. Started here, before the config is composed and
    before Prefect and MLflow are imported, its boot runs on the other core while they do.
    It stops when the process exits, after Prefect's own exit handlers have sent what
    they hold to it.
    """

    def __init__(self) -> None:
        import importlib.util

        spec = importlib.util.find_spec("prefect")
        assert spec is not None and spec.origin is not None
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        env = {
            **os.environ,
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(Path(spec.origin).parent.parent),
                "--factory",
                "prefect.server.api.server:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "error",
                "--lifespan",
                "on",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        atexit.register(self.stop)  # before Prefect's (imported later): runs after them

    def wait(self, timeout_s: float) -> None:
        """Return once it answers; fail with its last words if it exits or stays silent."""
        service = Service("prefect", self.process.pid, self.api_url, f"{self.api_url}/health", "")
        deadline = time.monotonic() + timeout_s
        while not service.answers(timeout_s=1.0):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                said = (
                    self.process.stderr.read().decode(errors="replace")
                    if self.process.stderr
                    else ""
                )
                raise LoomError(
                    f"Prefect's API server for this run did not start within {timeout_s:.0f} s "
                    f"(exit code {self.process.returncode}): {said[-1500:]}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop it (idempotent)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


_throwaway: list[ThrowawayPrefect] = []  # this process's, reused by its later runs (tests)


def throwaway_prefect(results_dir: Path | None = None) -> ThrowawayPrefect | None:
    """Start the run's own Prefect API server, unless a server is there to use.

    ``results_dir``: where ``loom up`` would have recorded a standing server.
    """
    if os.environ.get("PREFECT_API_URL"):
        return None
    if results_dir is not None and "prefect" in running(results_dir):
        return None
    if not _throwaway or _throwaway[-1].process.poll() is not None:
        _throwaway.append(ThrowawayPrefect())
    return _throwaway[-1]
