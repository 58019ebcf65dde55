"""The composition matrix: every combination is accepted or refused with a reason, and the
accepted ones run to a verified result (a seeded sample here; the whole matrix on demand)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from framework.cli import main
from framework.compose import Composer
from framework.matrix import SMALL, Combination, judge, matrix, sample

# A combination that needs a service the test does not start (an S3 endpoint, a Kafka
# cluster) is validated here and run where that service is (the storage and events tests).
NEEDS_A_SERVICE = ("storage=s3",)


@pytest.fixture(scope="module")
def verdicts() -> list:
    return matrix()


def test_every_scenario_has_a_small_size_and_appears_in_the_matrix(verdicts: list) -> None:
    from framework import registry

    scenarios = set(registry.options("scenario"))
    assert scenarios == set(SMALL)
    assert {v.combination.scenario for v in verdicts} == scenarios
    assert len(verdicts) > 150


def test_every_combination_is_accepted_or_refused_with_a_reason(verdicts: list) -> None:
    refused = [v for v in verdicts if not v.accepted]
    assert refused, "nothing refused: the seams are not checked"
    for v in refused:
        assert v.reason and "Traceback" not in v.reason, v
        assert "=" in v.reason, v.reason  # it names the setting
    labels = [(v, v.combination.label) for v in verdicts]
    zmq_on_dask = [v for v, label in labels if "executor=dask" in label and "zmq" in label]
    assert zmq_on_dask and not any(v.accepted for v in zmq_on_dask)


def test_a_setting_the_scenario_does_not_read_is_refused_in_the_matrix_too() -> None:
    verdict = judge(Composer(), Combination("synthetic", ("storage=s3",)))
    assert not verdict.accepted
    assert "does not use storage" in verdict.reason


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_a_seeded_sample_of_the_matrix_runs_to_a_verified_result(
    verdicts: list, workdir: Path
) -> None:
    runnable = [v for v in verdicts if not any(s in v.combination.label for s in NEEDS_A_SERVICE)]
    chosen = sample(runnable, 3, seed=0)
    for combination in chosen:
        assert main(["run", *combination.overrides()]) == 0, combination.label
    jobs = list((workdir / "results" / "no-recipe").glob("*/*/metrics.json"))
    assert len(jobs) == len(chosen)
    for metrics in jobs:
        aggregate = json.loads(metrics.read_text())["aggregate"]
        assert aggregate.get("result_verified", 1) == 1, metrics
        assert aggregate.get("tasks_failed", 0) == 0, metrics


def test_the_groups_the_fabric_connector_reads_are_crossed_with_it(verdicts: list) -> None:
    # dataflow.connector=fabric reads storage, coding and placement: every option of each is
    # in the matrix with it, accepted or refused with the reason.
    composer = Composer()
    fabric = [v for v in verdicts if "dataflow.connector=fabric" in v.combination.choices]
    for group in ("storage", "coding", "placement"):
        crossed = {
            c.split("=", 1)[1]
            for v in fabric
            for c in v.combination.choices
            if c.startswith(f"{group}=")
        }
        assert crossed == set(composer.options(group)), group
    drex = next(v for v in fabric if "placement=drex_lb" in v.combination.choices)
    assert not drex.accepted and "storage.afr_pct" in drex.reason
    memory = next(v for v in fabric if "storage=memory" in v.combination.choices)
    assert memory.accepted  # the default executor (thread) keeps the tasks in this process


def test_the_verdicts_are_reused_only_while_what_they_depend_on_is_unchanged(
    verdicts: list, tmp_path: Path
) -> None:
    # The docs build reuses the suite's verdicts: the same ones, from a cache keyed by the
    # menu, recipes and sources; a changed recipe file is another key.
    import shutil

    from framework.matrix import _inputs_digest

    assert matrix() == verdicts
    root = tmp_path / "copy"
    for part in ("conf", "recipes"):
        shutil.copytree(Composer().root / part, root / part)
    before = _inputs_digest(Composer(root))
    (root / "recipes" / "quickstart.yaml").write_text("description: changed\n")
    assert _inputs_digest(Composer(root)) != before
