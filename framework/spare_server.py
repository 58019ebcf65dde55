"""The warm spare's side (see :mod:`framework.spare`): import, wait for one run, run it."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from framework.spare import PID_NAME, SOCKET_NAME, import_settings, sources_mtime, start


def serve(services_dir: Path) -> None:
    """Import the engine, wait for one run, start a successor, run it, report its status."""
    from framework import services

    (services_dir / PID_NAME).write_text(str(os.getpid()))  # loom down stops it while importing
    settings = _warm_up(services_dir)
    started = sources_mtime()
    if not _still_wanted(services_dir, services):
        return
    connection, request, fds = _await_run(services_dir)
    theirs = import_settings(request["env"])
    asked_other = any(settings.get(k) != v for k, v in theirs.items())
    if asked_other or sources_mtime() != started:  # edited, or other servers: run it there
        connection.sendall(b'{"declined": true}\n')
        _succeed(services_dir, services)
        return
    connection.sendall((json.dumps({"pid": os.getpid()}) + "\n").encode())
    status = 1
    try:
        status = _run(request, fds)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        with contextlib.suppress(OSError):
            connection.sendall((json.dumps({"status": status}) + "\n").encode())
            connection.close()
        # The successor imports once the run is over: beside it, it would slow the run.
        _succeed(services_dir, services)


def _warm_up(services_dir: Path) -> dict[str, str]:
    """Import what loom run would; the import-time settings the spare now holds."""
    # Prefect reads its settings once, at import: the API is the server loom up started,
    # and a run that asks for another is declined.
    from framework import compose, engine, services

    alive = services.running(services_dir.parent)
    if "prefect" in alive:
        os.environ["PREFECT_API_URL"] = services.prefect_api_url(alive["prefect"])
    engine.configure_prefect(verbose=False)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot
    import mlflow  # noqa: F401
    import prefect  # noqa: F401

    compose.Composer().defaults()  # Hydra's own start-up, not the result: conf/ may change
    return import_settings(dict(os.environ))


def _await_run(services_dir: Path) -> tuple[socket.socket, dict[str, Any], list[int]]:
    """Listen on the spare's socket for one run: its connection, request and terminal."""
    path = services_dir / SOCKET_NAME
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path.unlink(missing_ok=True)
    listener.bind(str(path))
    listener.listen(1)
    connection, _ = listener.accept()
    listener.close()
    path.unlink(missing_ok=True)
    message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
    return connection, json.loads(message), fds


def _run(request: dict[str, Any], fds: list[int]) -> int:
    """Become the caller's run (its terminal, folder and environment); its exit status."""
    for fd, target in zip(fds, (0, 1, 2), strict=False):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ["LOOM_NO_SPARE"] = "1"  # this is the run: not to be handed over again
    try:
        from framework.cli import main

        return main(request["argv"])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1


def _still_wanted(services_dir: Path, services: Any) -> bool:
    """Whether loom down has not come meanwhile: this is still the spare, the servers run."""
    try:
        ours = int((services_dir / PID_NAME).read_text()) == os.getpid()
    except (OSError, ValueError):
        ours = False
    return ours and bool(services.running(services_dir.parent))


def _succeed(services_dir: Path, services: Any) -> None:
    """Start the next spare, unless loom down stopped the servers meanwhile."""
    if services.running(services_dir.parent):
        start(services_dir)


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
