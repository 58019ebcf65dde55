"""Markdown tables for benchmark output (shared by the scripts in this folder)."""

from __future__ import annotations


def markdown(rows: list[dict[str, object]]) -> str:
    """Rows of equal keys as a Markdown table."""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)
