"""Run folders: ``results/<recipe>/<UTC timestamp>-<id>/`` with the same records as MLflow."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml


def new_run_dir(results_dir: Path, recipe: str) -> Path:
    """Create and return a fresh run folder for ``recipe``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = results_dir / recipe / f"{stamp}-{secrets.token_hex(3)}"
    path.mkdir(parents=True, exist_ok=False)
    return path


def write_json(path: Path, data: Any) -> Path:
    """Write pretty JSON."""
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def write_yaml(path: Path, data: Any) -> Path:
    """Write YAML in key order."""
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
