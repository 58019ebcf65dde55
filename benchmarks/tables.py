"""Markdown tables for benchmark output (shared by the scripts in this folder)."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "results" / "benchmarks"


def markdown(rows: list[dict[str, object]]) -> str:
    """Rows of equal keys as a Markdown table."""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def publish(name: str, tables: dict[str, list[dict[str, object]]]) -> Path:
    """Print titled tables and write them to ``results/benchmarks/<name>.{md,json}``."""
    text = "\n\n".join(f"## {title}\n\n{markdown(rows)}" for title, rows in tables.items()) + "\n"
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(text)
    (RESULTS / f"{name}.json").write_text(json.dumps(tables, indent=2, default=str))
    print(f"written: {path}")
    return path
