"""Bad input → one clear message naming the field, the value and what is allowed; exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from framework.cli import main
from framework.compose import Composer
from framework.errors import ConfigError

BAD = [
    # (overrides, fragments the message must contain)
    (["executor=foo"], ["executor=foo", "no such option", "dask, process, thread"]),
    (["scenario=nope"], ["scenario=nope", "synthetic"]),
    (["scenario.taks=5"], ["unknown key 'scenario.taks'", "did you mean 'scenario.tasks'"]),
    (["+scenario.taks=5"], ["unknown key 'scenario.taks'", "scenario.tasks"]),
    (
        ["runner.workers=2"],
        ["unknown key 'runner.workers' for this runner", "runner=dask, runner=processes"],
    ),
    (["executor.max_wrkers=3"], ["executor.max_wrkers", "executor.max_workers"]),
    # A misspelt key is matched against every option of its group, and nested choices.
    (
        ["scenario=federated", "fl.topology.heigth=4"],
        ["did you mean 'fl.topology.height'?", "with fl/topology=balanced or"],
    ),
    (["executor=thread", "executor.n_wrkers=2"], ["'executor.n_workers'? (with executor=dask)"]),
    (
        ["scenario=federated", "fl.topology.height=4"],
        ["for this fl.topology; fl/topology=balanced, fl/topology=fixed_leaves have it"],
    ),
    (["scenario.tasks=abc"], ["scenario.tasks='abc'", "valid integer"]),
    (["scenario.tasks=0"], ["scenario.tasks=0", "greater than or equal to 1"]),
    (["scenario.tasks=true"], ["scenario.tasks=true: expected a number, not a boolean"]),
    (
        ["scenario=event_throughput", "events.consumer.gap_wait_ms=false"],
        ["events.consumer.gap_wait_ms=false: expected a number"],
    ),
    (
        ["faults=schedule", "faults.schedule=[{kind:task_failure,rate:1.5}]"],
        ["faults.schedule.0.rate=1.5", "less than or equal to 1"],
    ),
    (["scenario.structure=star"], ["'bag', 'diamond', 'reduce' or 'sequential'"]),
    (["repeats=0"], ["repeats=0", "greater than or equal to 1"]),
    (["retry_delay_s=5"], ["retry_delay_s=5.0", "retries=0"]),
    (
        ["executor=dask", "executor.address=tcp://127.0.0.1:8786", "executor.n_workers=2"],
        ["executor", "existing cluster", "n_workers"],
    ),
    (["scenario.tasks=1000000", "scenario.payload_bytes=1000000"], ["GiB", "payload_bytes"]),
    (["tracking=mlflow_server"], ["missing required value 'tracking.uri'"]),
    (["tracking=mlflow_server", "tracking.uri=ftp://x"], ["tracking.uri='ftp://x'"]),
    (["recipe=no/such"], ["recipe=no/such", "no such recipe", "quickstart"]),
    (["recipe=/nonexistent/r.yaml"], ["/nonexistent/r.yaml", "does not exist"]),
    (["tasks"], ["cannot parse override 'tasks'", "key=value"]),
    (["scenario.tasks=1,2"], ["add -m"]),
    (["seedz=3"], ["unknown key", "seed"]),
    (
        ["recipe=greenfaas/live", "endpoints.sites.cluster.executor={kind: dask, n_workers: 1}"],
        ["merges into the entry", "~endpoints.sites.cluster.executor '+endpoints.sites.cluster"],
    ),
    (["scenario=energy_aware_placement", "task_placement.alpha=2"], ["task_placement.alpha=2"]),
    (
        [
            "scenario=futures_chain",
            "dataflow=proxystore",
            "dataflow.connector=zmq",
            "executor=dask",
        ],
        ["dataflow.connector=zmq cannot run with executor=dask", "choose dataflow.connector=file"],
    ),
    # Found by the composition matrix: each failed at run time (exit 1), not at validation.
    (["scenario=stream"], ["scenario.method=proxy needs a store", "dataflow=proxystore"]),
    (["scenario=futures_chain"], ["scenario.mode=pipelined needs futures", "mode=sequential"]),
    (["scenario=event_triggers"], ["needs events.triggers", "recipe=octopus/triggers"]),
    # The fabric connector is the run's storage fabric: what that fabric cannot do is refused.
    (
        [
            "scenario=federated",
            "dataflow=proxystore",
            "dataflow.connector=fabric",
            "placement=drex_lb",
        ],
        ["placement=drex_lb ranks containers by their failure rates", "storage.afr_pct"],
    ),
    (
        [
            "scenario=synthetic",
            "dataflow=proxystore",
            "dataflow.connector=fabric",
            "storage=memory",
            "executor=process",
        ],
        ["storage=memory: in-memory containers live in one process", "executor=thread"],
    ),
    (
        ["scenario=storage_benchmark", "placement=hdfs_3rep"],
        ["placement=hdfs_3rep ranks containers by their failure rates"],
    ),
    # Found by the full matrix run: each failed at run time.
    (["scenario=event_access"], ["bob, eve not in events.principals", "recipe=octopus/acl"]),
    (
        ["scenario=storage_benchmark", "storage=mixed"],
        ["coding=isal stores 6 chunks per stripe and storage=mixed has 2", "share_containers"],
    ),
    (
        ["scenario=storage_faults", "storage.containers=2", "storage.share_containers=true"],
        ["tolerates 2 lost chunks and storage=local has 2 container(s)", "takes 3 down"],
    ),
]


def test_a_mapping_replaces_an_entry_the_way_the_error_says() -> None:
    composer = Composer()
    key = "endpoints.sites.cluster.executor"
    cfg = composer.compose(
        ["recipe=greenfaas/live", f"~{key}", f"+{key}={{kind: dask, n_workers: 1}}"]
    )
    assert cfg.groups["endpoints"].sites["cluster"].executor.kind == "dask"


@pytest.mark.parametrize(("overrides", "fragments"), BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_input_is_reported_clearly(overrides: list[str], fragments: list[str]) -> None:
    composer = Composer()
    with pytest.raises(ConfigError) as caught:
        for job in composer.expand(overrides, multirun=False):
            composer.compose(job)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    assert "Traceback" not in message


@pytest.mark.parametrize(
    "content,fragment",
    [
        ("scenario:\n  tasks: [1\n", "mine.yaml:3:1: not valid YAML"),
        ("- a\n- b\n", "a recipe must be a mapping of keys"),
        ("scenario:\n  tasks: 4\n", "add the line '# @package _global_'"),
        ("", "is empty"),
        ("# @package _global_\n", "is empty"),
        ("# @package _global_\nhydra:\n  sweeper:\n    params: [1]\n", "must map keys"),
        ("# @package _global_\nscenario:\n  tsks: 4\n", "did you mean 'scenario.tasks'"),
        ("# @package _global_\nscenario:\n  tasks: -4\n", "scenario.tasks=-4"),
    ],
)
def test_bad_recipe_files(
    workdir: Path, content: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = workdir / "mine.yaml"
    recipe.write_text(content)
    for command in (["show"], ["run", "-m"]):
        assert main([*command, f"recipe={recipe}"]) == 2
        err = capsys.readouterr().err
        assert fragment in " ".join(err.split()) and "Traceback" not in err, err
        assert len(err.strip().splitlines()) <= 3  # one message, perhaps wrapped
    assert not (workdir / "results").exists()


def test_unreadable_recipe_file(tmp_path: Path) -> None:
    recipe = tmp_path / "locked.yaml"
    recipe.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="not UTF-8"):
        Composer().compose([f"recipe={recipe}"])


def test_cli_exits_2_and_writes_nothing(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["run", "recipe=quickstart", "scenario.tasks=-3"])
    assert status == 2
    err = capsys.readouterr().err
    assert "scenario.tasks=-3" in err and "Traceback" not in err
    assert not (workdir / "results").exists()  # no MLflow store, no run folder


def test_jobs_option_names_only_what_the_user_wrote(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "-j", "2", "runner=sequential"]) == 2
    err = capsys.readouterr().err
    assert "-j 2: runner=sequential runs one job at a time" in err and "runner.workers" not in err
    assert not (workdir / "results").exists()


def test_a_misspelt_key_in_a_recipe_file_is_matched_against_the_other_options(
    tmp_path: Path,
) -> None:
    recipe = tmp_path / "mine.yaml"
    recipe.write_text("# @package _global_\nexecutor:\n  kind: thread\n  n_wrkers: 2\n")
    with pytest.raises(ConfigError, match=r"'executor.n_workers'\? \(with executor=dask\)"):
        Composer().compose([f"recipe={recipe}"])


def test_sweep_validates_every_job_before_starting(workdir: Path) -> None:
    status = main(["run", "-m", "scenario.tasks=10,-1"])
    assert status == 2
    assert not (workdir / "results").exists()


def test_user_recipe_file_is_composed(tmp_path: Path) -> None:
    recipe = tmp_path / "my_exp.yaml"
    recipe.write_text(
        "# @package _global_\ndefaults:\n  - override /executor: process\n"
        "repeats: 2\nscenario:\n  tasks: 7\n"
    )
    cfg = Composer().compose([f"recipe={recipe}", "scenario.structure=reduce"])
    assert cfg.recipe == "my_exp"
    assert cfg.groups["executor"].kind == "process"
    assert cfg.root.repeats == 2
    assert cfg.to_dict()["scenario"]["tasks"] == 7
    assert cfg.to_dict()["scenario"]["structure"] == "reduce"


def test_jobs_run_together_share_the_machine_unless_told() -> None:
    composer = Composer()
    whole = composer.compose(["recipe=quickstart", "energy=model"])
    halves = whole.sharing_machine(2)
    assert halves.groups["energy"].share == 0.5
    assert halves.config_hash() == whole.config_hash()  # metering is not what a job computes
    assert whole.sharing_machine(1) is whole
    told = composer.compose(["recipe=quickstart", "energy=model", "energy.share=0.25"])
    assert told.sharing_machine(4).groups["energy"].share == 0.25
    off = composer.compose(["recipe=quickstart", "energy=none"])
    assert off.sharing_machine(2) is off


def test_an_exclusive_job_is_charged_the_whole_machine_in_a_sweep() -> None:
    # It starts only when nothing else runs, so half the idle power would under-charge it.
    alone = Composer().compose(["recipe=taps/mapreduce", "energy=model"])
    assert alone.scenario.exclusive
    assert alone.sharing_machine(2) is alone
    assert alone.sharing_machine(2).groups["energy"].share == 1.0


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        (
            ["scenario=synthetic", "storage=s3"],
            [
                "storage=s3 is set, but scenario=synthetic does not use storage",
                "(it uses executor, dataflow)",
                "scenarios that do: storage_benchmark",
            ],
        ),
        (
            ["scenario=synthetic", "placement=drex_lb"],
            ["placement=drex_lb is set", "does not use placement"],
        ),
        (
            ["scenario=federated", "dataflow=proxystore", "storage=s3"],
            ["storage=s3 is set", "any with dataflow=proxystore dataflow.connector=fabric"],
        ),
        (
            ["recipe=greenfaas/faithful", "dataflow=proxystore"],
            ["dataflow=proxystore is set", "scenario=energy_aware_placement does not use dataflow"],
        ),
    ],
)
def test_a_setting_no_component_reads_is_refused(
    overrides: list[str], fragments: list[str], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["run", *overrides])
    assert status == 2
    err = capsys.readouterr().err
    for fragment in fragments:
        assert fragment in err, err
    assert "Traceback" not in err and not (workdir / "results").exists()


def test_the_fabric_connector_makes_the_storage_groups_part_of_the_job() -> None:
    # scenario=federated reads storage, coding and placement through the fabric connector:
    # they are validated, opened, logged and hashed with the job, and D-Rex is accepted where
    # the containers declare failure rates.
    overrides = [
        "scenario=federated",
        "dataflow=proxystore",
        "dataflow.connector=fabric",
        "placement=drex_lb",
        "coding=zfec",
        "storage.afr_pct=1.2",
        "storage.link={bandwidth_mb_s: 200, latency_ms: 1}",
    ]
    job = Composer().compose(overrides)
    assert job.needs() == ("executor", "dataflow", "fl", "storage", "coding", "placement")
    assert job.to_dict()["placement"]["kind"] == "drex_lb"
    other = Composer().compose([*overrides[:-1], "storage.afr_pct=2.0"])
    assert other.config_hash() != job.config_hash()
    by_value = Composer().compose(["scenario=federated"])
    assert "storage" not in by_value.to_dict() and "storage" not in by_value.needs()


HEAVY = ("mlflow", "prefect.server.api.server", "torch")


@pytest.mark.parametrize(
    "argv",
    [
        ["list"],
        ["show", "recipe=flight/hierarchy"],
        ["show", "scenario=federated", "fl.topology.heigth=4"],
        ["run", "recipe=no/such/recipe"],
    ],
    ids=["list", "show", "show-error", "run-error"],
)
def test_listing_showing_and_refusing_import_no_tracker_server_or_torch(argv: list[str]) -> None:
    # A fresh interpreter: the suite's own imports would hide what the command loads.
    probe = (
        "import contextlib, io, sys\n"
        "from framework.cli import main\n"
        "out, err = io.StringIO(), io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
        f"    code = main({argv!r})\n"
        f"print(code, [m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    code, loaded = done.stdout.strip().split(" ", 1)
    assert loaded == "[]"
    refused = argv[-1] in ("fl.topology.heigth=4", "recipe=no/such/recipe")
    assert code == ("2" if refused else "0")
