"""The documentation site builds with no warning, and its reference covers every group."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from framework import registry

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_docs_build_strictly_and_the_reference_covers_every_group(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("mkdocs")),
            "build",
            "--strict",
            "--site-dir",
            str(site),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for group in registry.groups():
        page = site / "reference" / "groups" / group / "index.html"
        assert page.exists(), f"no reference page for group {group}"
        for option in registry.options(group):
            assert f'id="{option}"' in page.read_text(), f"{group}={option} is not documented"
    assert (site / "reference" / "api" / "components" / "placement" / "drex_sc").is_dir()
