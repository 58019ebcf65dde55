"""The summary ``loom run`` prints: readable at 80 columns, every metric with its unit.

A sweep's jobs are labelled by the keys whose values differ between them, one column per
key, never cut: when the metrics do not fit beside the labels, they go on in a further table
with the same label columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

# Unit by the end of a metric's name (the longest match wins); dimensionless otherwise.
_SUFFIX_UNITS = {
    "_per_s": "1/s",
    "_kj_s": "kJ·s",
    "_ms": "ms",
    "_s": "s",
    "_kj": "kJ",
    "_j": "J",
    "_g": "g CO2e",
    "_w": "W",
    "_w_mean": "W",
    "_bytes": "B",
    "_mb": "MiB",
    "_mb_s": "MiB/s",
    "_gbps": "Gbit/s",
    "_pct": "%",
    "_kwh": "kWh",
}
# The headline charge is in the unit of the scheme ``pricing`` picks: service units (node-hours
# times the rate), charged joules, or grams of CO2e.
CHARGE_UNITS = {"node_hours": "SU", "energy": "J", "carbon": "g CO2e"}


def metric_unit(name: str, pricing: str | None = None) -> str:
    """The unit of a metric, from its name (``makespan_s`` → ``s``); ``""``: a count or ratio.

    Args:
        name: The metric.
        pricing: The ``pricing`` option of the run, for ``charge``.

    """
    if name == "charge":
        return CHARGE_UNITS.get(pricing or "", "")
    if name.startswith("charge_"):
        return metric_unit(name.removeprefix("charge"))
    ends = [suffix for suffix in _SUFFIX_UNITS if name.endswith(suffix)]
    return _SUFFIX_UNITS[max(ends, key=len)] if ends else ""


def fmt(value: float) -> str:
    """A table cell: 4 significant digits, or an exponent from 100,000."""
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"


def differing_keys(overrides: Sequence[Sequence[str]]) -> list[dict[str, str]]:
    """Per job, ``key → value`` for the keys whose values differ between the jobs."""
    parsed = [
        dict(o.split("=", 1) for o in job if "=" in o and not o.startswith("recipe="))
        for job in overrides
    ]
    keys = list(dict.fromkeys(k for job in parsed for k in job))
    differing = [k for k in keys if len({job.get(k, "") for job in parsed}) > 1]
    if not differing:  # the same config more than once: tell them apart by position
        return [{"job": str(i)} for i in range(len(parsed))]
    return [{k: job.get(k, "(default)") for k in differing} for job in parsed]


def sweep_tables(
    labels: Sequence[dict[str, str]],
    statuses: Sequence[str],
    rows: Sequence[dict[str, float]],
    metrics: Sequence[str],
    units: dict[str, str],
    width: int,
) -> list[Table]:
    """The sweep's tables: label columns, then as many metric columns as fit in ``width``.

    Args:
        labels: Each job's differing keys (:func:`differing_keys`).
        statuses: Each job's status; shown only where one did not finish.
        rows: Each job's metrics (means).
        metrics: The metrics to show, in order.
        units: Each metric's unit.
        width: The console's width.

    """
    keys = list(labels[0]) if labels else []
    show_status = any(s != "finished" for s in statuses)
    cells = {m: [fmt(r[m]) if m in r else "-" for r in rows] for m in metrics}
    widths = {m: max(8, *map(len, cells[m])) for m in metrics}
    headers = {m: _wrapped(_header(m, units), widths[m]) for m in metrics}

    def need(header: str, values: Sequence[str]) -> int:
        return max(len(line) for line in [*header.splitlines(), *values]) + 3  # padding, rule

    fixed = 1 + sum(need(k, [lab[k] for lab in labels]) for k in keys)
    fixed += need("status", statuses) if show_status else 0
    chunks: list[list[str]] = [[]]
    used = fixed
    for m in metrics:
        wide = need(headers[m], cells[m])
        if chunks[-1] and used + wide > width:
            chunks.append([])
            used = fixed
        chunks[-1].append(m)
        used += wide
    tables = []
    for chunk in chunks:
        table = Table()
        for key in keys:
            table.add_column(Text(key), no_wrap=True)
        if show_status:
            table.add_column("status", no_wrap=True)
        for m in chunk:
            table.add_column(Text(headers[m], justify="right"), justify="right", no_wrap=True)
        for i, label in enumerate(labels):
            status = [statuses[i]] if show_status else []
            table.add_row(*(Text(label[k]) for k in keys), *status, *(cells[m][i] for m in chunk))
        tables.append(table)
    return tables


def _wrapped(header: str, width: int) -> str:
    """A header broken after its underscores (and before its unit) into lines of ``width``."""
    parts = header.replace("_", "_\n").replace(" [", "\n[").splitlines()
    lines = [""]
    for part in parts:
        if part.startswith("[") and lines[-1]:
            part = " " + part
        if lines[-1] and len(lines[-1]) + len(part) > width:
            lines.append("")
            part = part.lstrip()
        lines[-1] += part
    return "\n".join(lines)


def _header(metric: str, units: dict[str, str]) -> str:
    unit = units.get(metric, "")
    return f"{metric} [{unit}]" if unit else metric


def print_summary(inv: Any, console: Console, accounting: Sequence[str]) -> None:
    """Print what ``loom run`` did: a table of the job, or of the sweep, and where it went."""
    jobs = [r.job for r in inv.results]
    first = jobs[0].config
    headline = list(first.scenario.headline_metrics) or sorted(
        k for r in inv.results for k in r.metrics if not k.endswith("_std")
    )
    headline += [m for m in accounting if m not in headline]
    headline = [m for m in headline if any(m in r.metrics for r in inv.results)]
    pricing = getattr(first.groups.get("pricing"), "kind", None)
    units = {m: metric_unit(m, pricing) for m in headline}
    if len(inv.results) == 1:
        result = inv.results[0]
        trials = result.job.config.root.repeats
        console.print(
            # Escaped: an override such as targets: [de-c0] is not markup.
            f"[bold]{escape(inv.recipe)}[/]: {escape(result.job.label)} "
            f"({trials} trial{'s' * (trials > 1)})",
            highlight=False,
        )
        if headline:
            table = Table()
            for column, justify in (("metric", "left"), ("mean", "right"), ("std", "right")):
                table.add_column(column, justify=justify)  # type: ignore[arg-type]
            table.add_column("unit")
            for name in headline:
                std = result.metrics.get(f"{name}_std", 0.0)
                table.add_row(name, fmt(result.metrics[name]), fmt(std), Text(units[name]))
            console.print(table)
    else:
        console.print(
            f"[bold]{escape(inv.recipe)}[/]: sweep of {len(jobs)} jobs "
            "(means of each job's trials)",
            highlight=False,
        )
        labels = differing_keys([j.overrides for j in jobs])
        tables = sweep_tables(
            labels,
            [r.status for r in inv.results],
            [r.metrics for r in inv.results],
            headline,
            units,
            console.width,
        )
        for table in tables:
            console.print(table)
    for r in inv.results:
        if r.status == "failed":
            where = f" (traceback: {r.run_dir / 'error.txt'})" if r.run_dir else ""
            line = r.error.line if r.error else "unknown error"
            console.print(
                f"[red]failed[/]: {escape(f'{r.job.label}: {line}{where}')}", highlight=False
            )
        elif r.status == "skipped":
            console.print(
                f"skipped (resume; finished run {r.run_id}): {escape(r.job.label)}",
                highlight=False,
            )
    if inv.run_dir is not None:
        console.print(f"Results: {inv.run_dir}", highlight=False, soft_wrap=True)
    else:
        console.print("Nothing to run: every job finished before (resume=true)", highlight=False)
    if inv.tracking_uri.startswith(("http://", "https://")):
        ui = f"open {inv.tracking_uri} (experiment '{inv.recipe}')"
    else:
        ui = (
            f"mlflow ui --backend-store-uri {inv.tracking_uri} --port 5000   "
            "then open http://127.0.0.1:5000"
        )
    console.print(f"MLflow:  {ui}", highlight=False, soft_wrap=True)
