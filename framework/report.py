"""``loom report``: compare a recipe's finished jobs.

Writes a table (CSV) and a plot (PNG) of chosen metrics against the parameters that differ
between runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rich.table import Table

from components.base import FinishedJob
from framework.config import ACCOUNTING_METRICS, suggest
from framework.errors import LoomError, UsageError
from framework.tracking import OPTION_TAG_PREFIX, job_runs, quiet_mlflow

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
    jobs = [
        FinishedJob(
            params=_prefixed(row, "params."),
            metrics={k: float(v) for k, v in _prefixed(row, "metrics.").items()},
            options=_prefixed(row, OPTION_TAG_PREFIX),
        )
        for _, row in runs.iterrows()
    ]
    found = model.comparison(jobs)
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
            *(_number(row[c]) if isinstance(row[c], float) else str(row[c]) for c in columns)
        )
    return path, table


def _prefixed(row: Any, prefix: str) -> dict[str, Any]:
    """The row's columns under ``prefix`` (params., metrics., tags…), unset ones left out."""
    return {
        column[len(prefix) :]: value
        for column, value in row.items()
        if column.startswith(prefix) and value is not None and value == value  # NaN: unset
    }


def _options_as_chosen(runs: Any) -> tuple[Any, set[str]]:
    """Each group's ``kind`` column becomes ``<group>``: the option the user chose.

    So options that share a kind (EC(3,2) and EC(6,3) are both ``hdfs_rs``) read apart, as
    on the command line (``placement=ec_3_2``), and keys that only follow from the option
    (``placement.k``) drop out as noise. Runs that recorded no option keep their kind.

    Returns:
        The runs and the param columns that now hold options.

    """
    runs = runs.copy()
    chosen = set()
    for column in [c for c in runs.columns if c.startswith(f"tags.{OPTION_TAG_PREFIX}")]:
        group = column[len(f"tags.{OPTION_TAG_PREFIX}") :]
        kind = f"params.{group}.kind"
        if kind in runs:
            runs[f"params.{group}"] = runs[column].where(runs[column].notna(), runs[kind])
            runs = runs.drop(columns=kind)
            chosen.add(f"params.{group}")
    return runs, chosen


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
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^\w.-]+", "_", recipe)
    scenario = runs["tags.scenario"].dropna().iloc[0] if "tags.scenario" in runs else None
    extra = _comparison(scenario, runs, out_dir, slug)
    runs, chosen = _options_as_chosen(runs)
    available = sorted(
        c[len("metrics.") :]
        for c in runs.columns
        if c.startswith("metrics.") and not c.endswith("_std")
    )
    if metrics is None:
        metrics = [m for m in _headline(scenario) if m in available] or available[:6]
        metrics += [m for m in ACCOUNTING_METRICS if m in available and m not in metrics]
    unknown = [m for m in metrics if m not in available]
    if unknown:
        hints = [f"'{m}'{suggest(m, available, list_siblings=False)}" for m in unknown]
        raise UsageError(
            f"--metrics: {'; '.join(hints)} not logged by {recipe}'s runs; "
            f"they logged: {', '.join(available)}"
        )
    params = [
        c
        for c in runs.columns
        if c.startswith("params.")
        and c[len("params.") :] not in _IGNORED_PARAMS
        and runs[c].astype(str).nunique() > 1
    ]
    # Component choices first: they are what a comparison is usually about.
    params.sort(key=lambda c: (not (c.endswith(".kind") or c in chosen), c))
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

    csv_path = out_dir / f"{slug}.csv"
    frame.to_csv(csv_path, index=False)
    png_path = _plot(
        frame,
        [c[len("params.") :] for c in params] or ["run"],
        metrics,
        out_dir / f"{slug}.png",
        recipe,
    )

    table = Table(title=f"{recipe}: {len(frame)} runs")
    keys = [c[len("params.") :] for c in params] or ["run"]
    for column in (*keys, *metrics):
        table.add_column(column, justify="right" if column in metrics else "left")
    for _, row in frame.iterrows():
        table.add_row(*(str(row[k]) for k in keys), *(_cell(row, m) for m in metrics))
    return csv_path, png_path, table, extra


def _number(value: float) -> str:
    """A table cell: 4 significant digits (whole from 10,000), ``-`` for no value (NaN)."""
    if value != value:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"


def _cell(row: Any, metric: str) -> str:
    value = row[metric]
    std = row.get(f"{metric}_std", 0.0)
    return f"{value:.4g} ± {std:.2g}" if std and std == std else f"{value:.4g}"


def _plot(frame: Any, keys: list[str], metrics: list[str], path: Path, title: str) -> Path:
    """One panel per metric against the first key; one line per value of the other keys.

    Runs with the same keys (re-runs, earlier sweeps) are averaged, with their spread as
    error bars; the legend sits under the panels, where it hides no data.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    columns = min(3, len(metrics))
    rows = (len(metrics) + columns - 1) // columns
    x_key, series_keys = keys[0], keys[1:]
    numeric_x = pd.to_numeric(frame[x_key], errors="coerce").notna().all()
    groups = list(frame.groupby(series_keys, dropna=False)) if series_keys else [("", frame)]
    prefix = _common_prefix(series_keys)
    # Many lines: 20 colours, then another marker for each further 20.
    colours = plt.get_cmap("tab20" if len(groups) > 10 else "tab10")
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.4 * rows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        for i, (label, part) in enumerate(groups):
            xs, ys, errors = _points(part, x_key, metric, numeric=bool(numeric_x))
            values = label if isinstance(label, tuple) else (label,)
            name = ", ".join(
                f"{k[len(prefix) :]}={'unset' if v != v else v}"  # NaN: the job had no such key
                for k, v in zip(series_keys, values, strict=False)
            )
            ax.errorbar(
                xs,
                ys,
                yerr=errors,
                color=colours(i % colours.N),
                marker="osD^vPX*"[(i // colours.N) % 8],
                linestyle="-" if numeric_x else "none",  # categories have no order to draw
                capsize=3,
                label=name or None,
            )
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel(x_key)
        if numeric_x:
            _numeric_ticks(ax, pd.to_numeric(frame[x_key]))
            ax.tick_params(axis="x", labelsize=8)
        else:  # names: slanted, each ending under its own point
            plt.setp(ax.get_xticklabels(), rotation=30, ha="right", fontsize=8)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    if series_keys:
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),  # under the panels; the saved image grows to hold it
            ncol=min(3, len(labels)),
            fontsize=8,
            frameon=False,
            title=prefix.rstrip(".") or None,
            title_fontsize=8,
        )
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _points(part: Any, x_key: str, metric: str, *, numeric: bool) -> tuple[Any, Any, Any]:
    """x, the mean of ``metric`` per x, and its error: the spread of runs, else a run's std."""
    import pandas as pd

    data = part.assign(_x=pd.to_numeric(part[x_key]) if numeric else part[x_key].astype(str))
    stats = data.groupby("_x", sort=True)[metric].agg(["mean", "std", "count"])
    errors = stats["std"].where(stats["count"] > 1)
    if f"{metric}_std" in data:
        errors = errors.fillna(data.groupby("_x", sort=True)[f"{metric}_std"].mean())
    return stats.index, stats["mean"], errors.fillna(0.0)


def _numeric_ticks(ax: Any, xs: Any) -> None:
    """A log axis for values spanning decades; ticks at the values when they are few."""
    from matplotlib.ticker import FixedFormatter, FixedLocator

    low, high = float(xs.min()), float(xs.max())
    if low > 0 and high > 50 * low:
        ax.set_xscale("log")
    unique = sorted(set(xs.tolist()))
    if len(unique) <= 12:
        ax.xaxis.set_major_locator(FixedLocator(unique))
        ax.xaxis.set_major_formatter(FixedFormatter([f"{v:g}" for v in unique]))
        ax.xaxis.set_minor_locator(FixedLocator([]))


def _common_prefix(keys: list[str]) -> str:
    """The dotted path the keys share (``events.producers.``), to shorten the legend."""
    if len(keys) < 2:
        return keys[0].rsplit(".", 1)[0] + "." if keys and "." in keys[0] else ""
    parts = [k.split(".") for k in keys]
    shared: list[str] = []
    for names in zip(*(p[:-1] for p in parts), strict=False):
        if len(set(names)) > 1:
            break
        shared.append(names[0])
    return ".".join(shared) + "." if shared else ""
