"""The hand-over to a warm spare falls back to running here whenever the spare cannot run it."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

from framework.spare import SOCKET_NAME, hand_over


def _spare_that(folder: Path, answer: bytes | None) -> threading.Thread:
    """A listener on the spare's socket that takes one request, answers ``answer`` and hangs up."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(folder / SOCKET_NAME))
    listener.listen(1)

    def serve() -> None:
        connection, _ = listener.accept()
        message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
        for fd in fds:
            socket.close(fd)
        assert json.loads(message)["argv"] == ["run", "scenario.tasks=1"]
        if answer is not None:
            connection.sendall(answer)
        connection.close()
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_no_spare_a_stale_socket_a_decline_or_a_hang_up_all_run_here(tmp_path: Path) -> None:
    argv = ["run", "scenario.tasks=1"]
    assert hand_over(argv, tmp_path) is None  # none started
    (tmp_path / SOCKET_NAME).touch()
    assert hand_over(argv, tmp_path) is None  # a file left behind, nobody listening
    (tmp_path / SOCKET_NAME).unlink()
    for answer in (b'{"declined": true}\n', None):  # declined; gone before it began
        spare = _spare_that(tmp_path, answer)
        assert hand_over(argv, tmp_path) is None
        spare.join(5)
        (tmp_path / SOCKET_NAME).unlink()


def test_the_status_the_spare_reports_is_the_status_of_the_run(tmp_path: Path) -> None:
    spare = _spare_that(tmp_path, b'{"pid": 1}\n{"status": 2}\n')
    assert hand_over(["run", "scenario.tasks=1"], tmp_path) == 2
    spare.join(5)
