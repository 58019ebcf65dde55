"""The menu in conf/ matches the models, every recipe composes, sweeps expand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from framework.compose import Composer
from framework.config import option_model

COMPOSER = Composer()
OPTION_FILES = sorted(COMPOSER.conf_dir.glob("*/*.yaml"))


@pytest.mark.parametrize(
    "path",
    [p for p in OPTION_FILES if p.parent.name != "recipe"],
    ids=lambda p: f"{p.parent.name}/{p.stem}",
)
def test_option_file_lists_every_field_of_its_model(path: Path) -> None:
    values = yaml.safe_load(path.read_text())
    model = option_model(path.parent.name, values["kind"])
    # A sub-group in the defaults list (fl: topology, strategy) fills the field of its name.
    listed = set(values) - {"defaults"}
    listed |= {next(iter(d)) for d in values.get("defaults", []) if isinstance(d, dict)}
    assert listed == set(model.model_fields), "conf YAML and model fields drifted apart"


SUBGROUP_FILES = sorted(p for p in COMPOSER.conf_dir.glob("*/*/*.yaml") if p.parts[-3] != "recipe")


@pytest.mark.parametrize("path", SUBGROUP_FILES, ids=lambda p: "/".join(p.parts[-3:]))
def test_sub_group_file_validates_and_lists_every_field(path: Path) -> None:
    from pydantic import TypeAdapter

    group, field = path.parent.parent.name, path.parent.name
    values = yaml.safe_load(path.read_text())
    (option,) = {yaml.safe_load(f.read_text())["kind"] for f in path.parent.parent.glob("*.yaml")}
    annotation = option_model(group, option).model_fields[field].annotation
    if "???" not in values.values():  # a required field (a file's path) has no default
        built = TypeAdapter(annotation).validate_python(values)
        assert set(values) == set(type(built).model_fields), "sub-group YAML and model drifted"


@pytest.mark.parametrize("recipe", COMPOSER.recipes())
def test_every_recipe_composes_and_validates(recipe: str) -> None:
    cfg = COMPOSER.compose([f"recipe={recipe}"])
    assert cfg.recipe == recipe
    assert cfg.root.description, "a recipe says what it shows"


def test_sweep_expands_to_cartesian_product() -> None:
    jobs = COMPOSER.expand(["executor=thread,process", "scenario.tasks=100,1000"], multirun=True)
    assert jobs == [
        ["executor=thread", "scenario.tasks=100"],
        ["executor=thread", "scenario.tasks=1000"],
        ["executor=process", "scenario.tasks=100"],
        ["executor=process", "scenario.tasks=1000"],
    ]


def test_config_hash_ignores_bookkeeping_keys() -> None:
    a = COMPOSER.compose(["scenario.tasks=10"])
    b = COMPOSER.compose(["scenario.tasks=10", "resume=true", "description=x"])
    c = COMPOSER.compose(["scenario.tasks=11"])
    assert a.config_hash() == b.config_hash() != c.config_hash()


def test_flat_params_are_dotted() -> None:
    flat = COMPOSER.compose(["recipe=taps/failures"]).flat()
    assert json.loads(flat["faults.schedule"])[0]["rate"] == 0.2
    assert flat["faults.kind"] == "schedule"
    assert flat["executor.kind"] == "thread"


def test_a_recipe_declares_its_sweep_and_the_command_line_narrows_it() -> None:
    jobs = COMPOSER.expand(["recipe=drex/reliability_sweep", "scenario.replay=1"], multirun=False)
    assert len(jobs) == 11 * 5  # placers x targets, declared in the recipe
    assert all("scenario.replay=1" in job for job in jobs)
    narrowed = COMPOSER.expand(["recipe=drex/reliability_sweep", "placement=drex_lb"], False)
    assert len(narrowed) == 5 and all("placement=drex_lb" in job for job in narrowed)
    assert COMPOSER.recipe_sweep(["recipe=quickstart"]) == []


def test_a_sweep_over_fault_schedules_shows_each_job_as_given(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from framework.cli import main

    schedules = "[],[{kind: container_down, at_fraction: 0.25, targets: [de-c0]}]"
    argv = ["show", "-m", "recipe=composite/carbon_faults", f"faults.schedule={schedules}"]
    assert main([*argv, "sites.pl.carbon=pl,660"]) == 0
    out = capsys.readouterr().out
    assert sum(line.startswith("# job") for line in out.splitlines()) == 4  # 2 schedules by 2 grids
    assert out.replace("\n", "").count("targets:[de-c0]") == 2  # not eaten as markup (may wrap)
