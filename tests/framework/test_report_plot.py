"""The report's plot helpers: repeated runs are averaged, legends are shortened."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from framework.report import _common_prefix, _plot, _points


def test_runs_with_the_same_x_are_averaged_with_their_spread() -> None:
    part = pd.DataFrame({"n": ["1", "2", "2"], "rate": [10.0, 20.0, 40.0]})
    xs, ys, errors = _points(part, "n", "rate", numeric=True)
    assert list(xs) == [1, 2]
    assert list(ys) == [10.0, 30.0]
    assert errors.iloc[0] == 0.0 and round(errors.iloc[1], 3) == 14.142


def test_a_single_run_keeps_its_own_trial_spread() -> None:
    part = pd.DataFrame({"n": ["4"], "rate": [5.0], "rate_std": [0.5]})
    _, ys, errors = _points(part, "n", "rate", numeric=True)
    assert list(ys) == [5.0] and list(errors) == [0.5]


def test_the_legend_drops_the_shared_dotted_path() -> None:
    keys = ["events.producers.event_size", "events.producers.events"]
    assert _common_prefix(keys) == "events.producers."
    assert _common_prefix(["executor.kind", "scenario.tasks"]) == ""
    assert _common_prefix(["scenario.tasks"]) == "scenario."
    assert _common_prefix([]) == ""


def test_the_plot_is_written(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "count": ["1", "2", "4", "1", "2", "4"],
            "events.size": ["100", "100", "100", "1024", "1024", "1024"],
            "rate": [1.0, 2.0, 3.0, 0.5, 1.0, 1.5],
        }
    )
    path = _plot(frame, ["count", "events.size"], ["rate"], tmp_path / "p.png", "t")
    assert path.stat().st_size > 5_000
