"""The run summary: readable at 80 columns, every job told apart, every metric with a unit."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from components.error_info import ErrorInfo
from framework.compose import Composer
from framework.config import ACCOUNTING_METRICS
from framework.engine import Invocation
from framework.job import Job, JobResult
from framework.summary import differing_keys, metric_unit, print_summary

METRICS = {
    "makespan_s": 0.0123,
    "tasks_per_s": 812.5,
    "task_latency_p50_ms": 1.234,
    "task_latency_p95_ms": 2.5,
    "task_latency_p99_ms": 3.75,
    "overhead_per_task_ms": 0.5,
    "tasks_failed": 0.0,
    "result_verified": 1.0,
    "store_keys_leaked": 0.0,
    "energy_j": 4.5,
    "carbon_g": 0.001,
    "charge": 0.0002,
}


def _render(results: list[JobResult]) -> str:
    console = Console(width=80, record=True, color_system=None)
    inv = Invocation("taps/structures", Path("results/x"), "sqlite:///m.db", results, {})
    print_summary(inv, console, ACCOUNTING_METRICS)
    return console.export_text()


def test_a_sweep_at_80_columns_keeps_every_label_and_unit() -> None:
    composer = Composer()
    sweep = [
        ["executor=thread", "scenario.tasks=10", "dataflow=proxystore"],
        ["executor=process", "scenario.tasks=10", "dataflow=proxystore"],
        ["executor=process", "scenario.tasks=2000", "dataflow=proxystore"],
    ]
    config = composer.compose(["recipe=quickstart"])
    results = [
        JobResult(Job(i, ["recipe=quickstart", *o], config), "finished", metrics=dict(METRICS))
        for i, o in enumerate(sweep)
    ]
    results[2].status = "failed"
    results[2].metrics = {}
    results[2].error = ErrorInfo("RuntimeError", "boom", "")
    text = _render(results)
    lines = text.splitlines()
    tables = [line for line in lines if line[:1] in "┏┃┡│└"]
    assert max(map(len, tables)) <= 80  # the MLflow command line alone runs on, to copy whole
    rows = [line for line in lines if line.startswith("│")]
    # Only what differs labels a job, whole; the shared dataflow choice is left out.
    assert sum("│ thread " in r and "│ 10 " in r for r in rows) >= 1
    assert sum("│ process " in r and "│ 2000 " in r and "failed" in r for r in rows) >= 1
    assert "proxystore" not in "".join(rows)
    header = " ".join(lines)
    for unit in ("[s]", "[1/s]", "[ms]", "[J]", "[g CO2e]", "[SU]"):
        assert unit in header, unit
    assert "failed: executor=process scenario.tasks=2000" in " ".join(text.split())


def test_a_failed_run_prints_its_title_whole_and_no_empty_table() -> None:
    config = Composer().compose(["recipe=quickstart"])
    failed = JobResult(
        Job(0, ["recipe=quickstart"], config), "failed", error=ErrorInfo("E", "it broke", "")
    )
    text = _render([failed])
    assert "taps/structures: defaults (3 trials)" in text
    assert "┏" not in text and "failed: defaults: E: it broke" in text


def test_an_override_with_brackets_is_printed_as_given_not_taken_for_markup() -> None:
    config = Composer().compose(["recipe=quickstart"])
    given = "faults.schedule=[{kind: container_down, targets: [de-c0]}]"
    failed = JobResult(
        Job(0, ["recipe=quickstart", given], config),
        "failed",
        error=ErrorInfo("FaultInjectionFailed", "targets ['xx-c0'] are not in this run", ""),
    )
    text = " ".join(_render([failed]).split())
    assert f"taps/structures: {given} (3 trials)" in text
    assert "targets ['xx-c0'] are not in this run" in text


def test_labels_and_units() -> None:
    same = differing_keys([["a=1", "b=2"], ["a=1", "b=2"]])
    assert same == [{"job": "0"}, {"job": "1"}]
    assert differing_keys([["a=1"], ["a=1", "b=2"]]) == [{"b": "(default)"}, {"b": "2"}]
    assert metric_unit("task_latency_p95_ms") == "ms" and metric_unit("tasks_failed") == ""
    assert metric_unit("charge", "carbon") == "g CO2e" and metric_unit("charge_energy_j") == "J"
    assert metric_unit("edp_kj_s") == "kJ·s" and metric_unit("tasks_per_s") == "1/s"
