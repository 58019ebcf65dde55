"""An unreachable MLflow server is reported in seconds, before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework.cli import main


def test_unreachable_tracking_server_fails_fast(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        ["run", "tracking=mlflow_server", "tracking.uri=http://127.0.0.1:9", "scenario.tasks=2"]
    )
    assert status == 1
    err = capsys.readouterr().err
    assert "tracking.uri=http://127.0.0.1:9" in err and "no MLflow server answered" in err
    assert not (workdir / "results").exists()
