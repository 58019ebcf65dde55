"""A warm spare: a process with Loom's engine already imported, waiting to run a `loom run`.

``loom up`` starts one beside the servers. A later ``loom run`` hands it its arguments, its
folder, its environment and its terminal (the file descriptors themselves, over a Unix
socket), then waits for the exit status: the run prints to the caller's terminal as if it
ran there, without paying to import Prefect, MLflow and Hydra first. The spare takes one run
only: when the run ends, it starts its successor and exits.

A run goes through the spare only when one is ready, ``-v`` is not given, and no Loom source
file changed since the spare started (it would run the old code): otherwise ``loom run``
runs in its own process, as without ``loom up``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

SOCKET_NAME = "spare.sock"
PID_NAME = "spare.pid"
_SOURCES = ("framework", "components")


def sources_mtime() -> float:
    """The newest modification time of Loom's own source files."""
    root = Path(__file__).resolve().parents[1]
    return max(
        (p.stat().st_mtime for package in _SOURCES for p in (root / package).rglob("*.py")),
        default=0.0,
    )


def hand_over(argv: list[str], services_dir: Path) -> int | None:
    """Run ``loom <argv>`` in the spare, on this terminal; its exit status (None: no spare).

    Args:
        argv: The command line after ``loom``.
        services_dir: Where ``loom up`` keeps the services' state.

    """
    path = services_dir / SOCKET_NAME
    if not path.exists():
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:  # none listening: a stale socket, or the spare is busy starting
        sock.close()
        return None
    with sock, sock.makefile("rb") as lines:
        request = {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}
        socket.send_fds(sock, [json.dumps(request).encode()], [0, 1, 2])
        reply = _read_line(lines)
        if reply.get("declined") or "pid" not in reply:  # declined, or gone before it began
            return None
        pid = int(reply["pid"])
        while True:
            try:
                done = _read_line(lines)
            except KeyboardInterrupt:  # the terminal's Ctrl-C: the run gets it
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGINT)
                continue
            return int(done.get("status", 1))


def _read_line(lines: Any) -> dict[str, Any]:
    """One JSON line from the spare; ``{}`` where it hung up first."""
    line = lines.readline()
    reply: dict[str, Any] = json.loads(line) if line.strip() else {}
    return reply


def import_settings(env: dict[str, str]) -> dict[str, str]:
    """The variables Prefect and MLflow read at import."""
    return {k: v for k, v in env.items() if k.startswith(("PREFECT_", "MLFLOW_"))}


def waiting(services_dir: Path) -> int | None:
    """The pid of the spare waiting for a run, if one is."""
    try:
        pid = int((services_dir / PID_NAME).read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid if (services_dir / SOCKET_NAME).exists() else None


def start(services_dir: Path) -> int:
    """Start a spare in the background (its own session); its pid."""
    process = subprocess.Popen(
        [sys.executable, "-m", "framework.spare_server", str(services_dir.resolve())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(services_dir / "spare.log", "ab"),  # noqa: SIM115  # the child keeps it
        start_new_session=True,
    )
    return process.pid


def stop(services_dir: Path) -> bool:
    """Stop the waiting spare (a run one already took goes on); whether one was waiting."""
    pid_file = services_dir / PID_NAME
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return False
    pid_file.unlink(missing_ok=True)
    (services_dir / SOCKET_NAME).unlink(missing_ok=True)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True
