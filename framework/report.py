"""``loom report``: compare a recipe's finished jobs.

Writes a table (CSV) and a plot (PNG) of chosen metrics against the parameters that differ
between runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rich.table import Table

from framework.errors import LoomError
from framework.tracking import job_runs, quiet_mlflow

# Params that differ between runs without changing the experiment.
_IGNORED_PARAMS = ("resume", "description", "results_dir")


def _headline(scenario: str | None) -> list[str]:
    from components.base import ScenarioConfig
    from framework import registry

    if not scenario:
        return []
    try:
        model = registry.config_model("scenario", scenario)
    except LoomError:
        return []
    return list(model.headline_metrics) if issubclass(model, ScenarioConfig) else []


def _comparison(
    scenario: str | None, runs: Any, out_dir: Path, slug: str
) -> tuple[Path, Table] | None:
    """The scenario's own comparison table (e.g. items stored vs the best baseline)."""
    from components.base import ScenarioConfig
    from framework import registry

    if not scenario:
        return None
    try:
        model = registry.config_model("scenario", scenario)
    except LoomError:
        return None
    if not issubclass(model, ScenarioConfig):
        return None
    rows = [
        {
            **{c[len("params.") :]: row[c] for c in runs.columns if c.startswith("params.")},
            **{c[len("metrics.") :]: row[c] for c in runs.columns if c.startswith("metrics.")},
        }
        for _, row in runs.iterrows()
    ]
    found = model.comparison(rows)
    if not found or not found[1]:
        return None
    title, table_rows = found
    import pandas as pd

    path = out_dir / f"{slug}_comparison.csv"
    pd.DataFrame(table_rows).to_csv(path, index=False)
    table = Table(title=title)
    columns = list(table_rows[0])
    for column in columns:
        table.add_column(
            column, justify="left" if isinstance(table_rows[0][column], str) else "right"
        )
    for row in table_rows:
        table.add_row(
            *(f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in columns)
        )
    return path, table


def make_report(
    recipe: str, uri: str, out_dir: Path, metrics: list[str] | None
) -> tuple[Path, Path, Table, tuple[Path, Table] | None]:
    """Build the comparison.

    Returns:
        The CSV path, the PNG path, a printable table, and the scenario's own comparison
        (its CSV path and table) if it has one.

    """
    quiet_mlflow(False)
    runs = job_runs(uri, recipe)
    if runs.empty:
        raise LoomError(f"experiment '{recipe}' has no finished runs yet")
    if "tags.loom.config_hash" in runs:  # a config run twice (resume, re-runs): keep the latest
        runs = runs.drop_duplicates("tags.loom.config_hash", keep="last")
    available = sorted(
        c[len("metrics.") :]
        for c in runs.columns
        if c.startswith("metrics.") and not c.endswith("_std")
    )
    if metrics is None:
        scenario = runs["tags.scenario"].dropna().iloc[0] if "tags.scenario" in runs else None
        metrics = [m for m in _headline(scenario) if m in available] or available[:6]
    unknown = [m for m in metrics if m not in available]
    if unknown:
        raise LoomError(
            f"--metrics: {', '.join(unknown)} not found; available: {', '.join(available)}"
        )
    params = [
        c
        for c in runs.columns
        if c.startswith("params.")
        and c[len("params.") :] not in _IGNORED_PARAMS
        and runs[c].astype(str).nunique() > 1
    ]
    # Component choices first: they are what a comparison is usually about.
    params.sort(key=lambda c: (not c.endswith(".kind"), c))
    # A key that only follows another (max_workers differs because the executor does) is noise.
    params = [
        c
        for i, c in enumerate(params)
        if not any(runs.groupby(p)[c].nunique(dropna=False).max() <= 1 for p in params[:i])
    ]
    frame = runs[params].copy()
    frame.columns = [c[len("params.") :] for c in params]
    if not params:
        frame["run"] = runs["tags.mlflow.runName"].fillna(runs["run_id"]).to_numpy()
    for name in metrics:
        frame[name] = runs[f"metrics.{name}"].to_numpy()
        if f"metrics.{name}_std" in runs:
            frame[f"{name}_std"] = runs[f"metrics.{name}_std"].to_numpy()
    frame["run_id"] = runs["run_id"].to_numpy()

    out_dir.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^\w.-]+", "_", recipe)
    csv_path = out_dir / f"{slug}.csv"
    frame.to_csv(csv_path, index=False)
    png_path = _plot(
        frame,
        [c[len("params.") :] for c in params] or ["run"],
        metrics,
        out_dir / f"{slug}.png",
        recipe,
    )

    scenario = runs["tags.scenario"].dropna().iloc[0] if "tags.scenario" in runs else None
    extra = _comparison(scenario, runs, out_dir, slug)
    table = Table(title=f"{recipe}: {len(frame)} runs")
    keys = [c[len("params.") :] for c in params] or ["run"]
    for column in (*keys, *metrics):
        table.add_column(column, justify="right" if column in metrics else "left")
    for _, row in frame.iterrows():
        table.add_row(*(str(row[k]) for k in keys), *(_cell(row, m) for m in metrics))
    return csv_path, png_path, table, extra


def _cell(row: Any, metric: str) -> str:
    value = row[metric]
    std = row.get(f"{metric}_std", 0.0)
    return f"{value:.4g} ± {std:.2g}" if std and std == std else f"{value:.4g}"


def _plot(frame: Any, keys: list[str], metrics: list[str], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    columns = min(3, len(metrics))
    rows = (len(metrics) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.4 * rows), squeeze=False)
    x_key = keys[0]
    numeric_x = pd.to_numeric(frame[x_key], errors="coerce").notna().all()
    series_keys = keys[1:]
    groups = frame.groupby(series_keys, dropna=False) if series_keys else [("", frame)]
    for ax, metric in zip(axes.flat, metrics, strict=False):
        for label, part in groups:
            part = part.sort_values(x_key, key=(lambda s: pd.to_numeric(s)) if numeric_x else None)
            xs = pd.to_numeric(part[x_key]) if numeric_x else part[x_key].astype(str)
            std = part.get(f"{metric}_std")
            name = ", ".join(
                f"{k}={v}"
                for k, v in zip(
                    series_keys, label if isinstance(label, tuple) else (label,), strict=False
                )
            )
            ax.errorbar(xs, part[metric], yerr=std, marker="o", capsize=3, label=name or None)
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel(x_key)
        if numeric_x and pd.to_numeric(frame[x_key]).max() > 50 * max(
            1e-9, pd.to_numeric(frame[x_key]).min()
        ):
            ax.set_xscale("log")
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
        if series_keys:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
