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
    # What loom run would import anyway. Prefect reads its settings once, at import: the
    # API is the server loom up started, and a run that asks for another is declined.
    from framework import compose, engine, services

    pid_file = services_dir / PID_NAME
    pid_file.write_text(str(os.getpid()))  # at once: loom down stops a spare still importing
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
    started = sources_mtime()
    settings = import_settings(dict(os.environ))

    if not _still_wanted(services_dir, services):
        return
    path = services_dir / SOCKET_NAME
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path.unlink(missing_ok=True)
    listener.bind(str(path))
    listener.listen(1)
    connection, _ = listener.accept()
    listener.close()
    path.unlink(missing_ok=True)
    message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
    request = json.loads(message)
    theirs = import_settings(request["env"])
    asked_other = any(settings.get(k) != v for k, v in theirs.items())
    if asked_other or sources_mtime() != started:  # edited, or other servers: run it there
        connection.sendall(b'{"declined": true}\n')
        _succeed(services_dir, services)
        return
    connection.sendall((json.dumps({"pid": os.getpid()}) + "\n").encode())
    for fd, target in zip(fds, (0, 1, 2), strict=False):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ["LOOM_NO_SPARE"] = "1"  # this is the run: not to be handed over again
    status = 1
    try:
        from framework.cli import main

        status = main(request["argv"])
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        with contextlib.suppress(OSError):
            connection.sendall((json.dumps({"status": status}) + "\n").encode())
            connection.close()
        # The successor imports once the run is over: beside it, it would slow the run.
        _succeed(services_dir, services)


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
