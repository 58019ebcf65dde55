"""Carbon-steered FL over sites: the tree from the sites, carbon per site, the schedule's rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.scenarios.steered_federation import site_topology
from components.sites import Sites
from framework.compose import Composer
from framework.errors import ConfigError

LINK = {"bandwidth_mb_s": 100.0, "latency_ms": 10.0}
RECIPE = "recipe=composite/carbon_schedules"
FABRIC = ["dataflow=proxystore", "dataflow.connector=fabric"]


def test_the_tree_is_the_sites_with_their_devices() -> None:
    sites = Sites.parse(
        {
            "cloud": {"carbon": "fr"},
            "eu": {"parent": "cloud", "link": LINK, "carbon": "de"},
            "de": {"parent": "eu", "link": LINK, "carbon": "de", "devices": 3},
            "gb": {"parent": "cloud", "link": LINK, "carbon": "gb", "devices": 2},
            "store": {"parent": "cloud", "link": LINK, "carbon": "fr"},  # no devices: no node
        }
    )
    topology, home = site_topology(sites)
    assert topology.root == "cloud" and topology.height == 3
    assert topology.nodes["eu"].children == ("de",)
    assert topology.workers == ["de-0", "de-1", "de-2", "gb-0", "gb-1"]
    assert "store" not in topology.nodes
    assert home["de-1"] == "de" and home["gb-0"] == "gb"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["scenario=steered_federation"], "scenario=steered_federation runs over sites"),
        ([RECIPE, "fl.participation=0.5"], "fl.participation=0.5: scenario=steered_federation"),
        ([RECIPE, "fl/topology=balanced"], "fl.topology is set, but scenario=steered_federation"),
        ([RECIPE, "fl/strategy=fedasync"], "fl.mode=async is not steered"),
        (
            [RECIPE, "+sites.de.workers=2", "executor.max_workers=3"],
            "executor.max_workers=3: the pools are the sites' (sites.<name>.workers); drop it",
        ),
        (
            [RECIPE, "+sites.de.workers=2", "executor=dask", "+executor.address=tcp://h:8786"],
            "sites.<name>.workers is set (de=2), but executor=dask cannot run a pool per site",
        ),
        (
            [
                "recipe=composite/carbon_faults",  # its sites have pools: de's has two
                "faults.schedule=[{kind: worker_kill, targets: [de-c0]}]",
            ],
            "worker_kill cannot target de-c0 in this run; it may target: cloud, de, gb, fr, pl",
        ),
        ([RECIPE, "sites.de.workers=4"], "add it with '+sites.de.workers=4'"),
        (
            [
                RECIPE,
                "sites.de.devices=0",
                "sites.gb.devices=0",
                "sites.fr.devices=0",
                "sites.pl.devices=0",
            ],
            "sites: no site has devices",
        ),
        ([RECIPE, "scenario.policy=greedy"], "scenario.policy"),
        ([RECIPE, "+sites.de.containers=3"], "sites.de.containers=3: this run stores nothing"),
        (
            [RECIPE, *FABRIC, "storage=s3"],
            "storage=s3: its containers are listed, not counted",
        ),
        ([RECIPE, *FABRIC, "storage.containers=9"], "storage.containers=9: the containers are"),
        (
            [RECIPE, *FABRIC, "+storage.link={bandwidth_mb_s: 1, latency_ms: 1}"],
            "storage.link=",
        ),
        (
            [
                "recipe=composite/carbon_faults",
                "faults.schedule=[{kind: link_partition, targets: [cloud-c0, de-c9]}]",
            ],
            "link_partition cannot target cloud-c0, de-c9 in this run; it may target: de-c0,",
        ),
    ],
    ids=[
        "no-sites",
        "participation",
        "topology",
        "async",
        "workers-and-max-workers",
        "workers-on-a-remote-cluster",
        "worker-fault-target",
        "workers-unset",
        "no-devices",
        "policy",
        "containers-unused",
        "storage-listed",
        "storage-count",
        "storage-link",
        "fault-target",
    ],
)
def test_what_the_scenario_cannot_honour_is_refused(overrides: list[str], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Composer().compose(overrides)
    assert expected in str(caught.value)


def test_a_small_steered_run_charges_each_site_and_keeps_the_schedule(workdir: Path) -> None:
    import mlflow

    from framework.cli import main

    status = main(
        [
            "run",
            RECIPE,
            "fl.rounds=6",
            "executor=thread",
            "energy=none",
            "sites.de.devices=4",
            "sites.gb.devices=4",
            "sites.fr.devices=2",
            "sites.pl.devices=2",
            "+sites.de.workers=2",  # a pool per site: de's two threads, one at each other site
        ]
    )
    assert status == 0
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'results' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["composite/carbon_schedules"])
    job = runs[runs["tags.loom.run_type"] == "job"].iloc[0]
    trial_dir = Path(job["tags.loom.run_dir"]) / "trial-000"
    rounds = [json.loads(line) for line in (trial_dir / "rounds.jsonl").read_text().splitlines()]
    assert len(rounds) == 6
    for row in rounds:  # the cleanest sites holding 60 % of the 12 devices, at least
        assert sum(row[f"devices_{s}"] for s in ("de", "gb", "fr", "pl")) >= 0.6 * 12
        trained = [s for s in ("de", "gb", "fr", "pl") if row[f"devices_{s}"]]
        assert all(row[f"carbon_g_{s}"] > 0 and row[f"energy_j_{s}"] > 0 for s in trained)
        assert all(row[f"cpu_s_{s}"] == 0 for s in ("de", "gb", "fr", "pl") if s not in trained)
        assert row["carbon_comm_g"] > 0 and row["link_s"] > 0
        # Each trained site's aggregate was ready within the round, the leader's last.
        assert all(0 < row[f"time_s_{s}"] <= row["time_s_cloud"] for s in trained)
        assert row["time_s_cloud"] <= row["round_s"]
    for site in ("de", "gb", "fr", "pl"):  # no site sits out more than two rounds in a row
        out = 0
        for row in rounds:
            out = 0 if row[f"devices_{site}"] else out + 1
            assert out <= 2
    # Waits within the budget: 6 rounds may wait one hour in all.
    assert rounds[0]["hour"] >= 24 and rounds[-1]["hour"] + 1 - 24 <= 6 + 1
    total = job["metrics.carbon_total_g"]
    assert total == pytest.approx(sum(r["carbon_training_g"] + r["carbon_comm_g"] for r in rounds))
    assert 0 < job["metrics.comm_carbon_share"] < 1
    # Models travel by value here: nothing crosses the fabric, no storage is charged.
    assert job["metrics.carbon_storage_g"] == 0 and job["metrics.bytes_fabric"] == 0
    assert 0.1 < job["metrics.final_accuracy"] <= 1
    assert (trial_dir / "steered-trial-000.png").stat().st_size > 10_000
    # Each task ran in its site's pool: a site's devices train there, the leader aggregates
    # in the root's, and the executor counts every site's workers.
    tasks = [json.loads(line) for line in (trial_dir / "tasks.jsonl").read_text().splitlines()]
    assert {t["site"] for t in tasks if t["name"] == "train"} == {"de", "gb", "fr", "pl"}
    assert "cloud" in {t["site"] for t in tasks if t["name"] == "aggregate"}
    threads = {site: {t["worker"] for t in tasks if t["site"] == site} for site in ("de", "gb")}
    assert not threads["de"] & threads["gb"] and len(threads["gb"]) == 1
    assert job["params.executor.kind"] == "thread"
    # The agent heard every round over the fabric (and the start), answered each, lost none.
    assert job["metrics.round_events"] == 7 and job["metrics.plans_received"] == 6
    assert job["metrics.events_lost"] == 0 and job["metrics.duplicate_events"] == 0
    assert job["metrics.plan_wait_ms_max"] < 1e3 * 60  # no round waited out its timeout


def test_the_sites_workers_give_each_site_a_pool_the_root_first() -> None:
    config = Composer().compose([RECIPE, "+sites.de.workers=3", "+sites.pl.workers=2"])
    executor = config.groups["executor"]
    assert executor.sites == (  # type: ignore[attr-defined]
        ("cloud", 1),
        ("de", 3),
        ("gb", 1),
        ("fr", 1),
        ("pl", 2),
    )
    assert Composer().compose([RECIPE]).groups["executor"].sites is None  # type: ignore[attr-defined]


def test_the_fabric_containers_stand_at_the_sites_behind_their_links() -> None:
    config = Composer().compose(
        [RECIPE, *FABRIC, "+sites.de.containers=2", "+sites.cloud.containers=3"]
    )
    storage = config.groups["storage"]
    specs, cleanup = storage.container_specs()  # type: ignore[attr-defined]
    names = [s.name for s in specs]
    assert names == [
        "cloud-c0",
        "cloud-c1",
        "cloud-c2",
        "de-c0",
        "de-c1",
        "gb-c0",
        "fr-c0",
        "pl-c0",
    ]
    links = {s.name: s.link for s in specs}
    assert links["cloud-c0"] is None  # the root has no link up
    assert (links["de-c1"].bandwidth_mb_s, links["de-c1"].latency_ms) == (100.0, 15.0)
    assert (links["pl-c0"].bandwidth_mb_s, links["pl-c0"].latency_ms) == (50.0, 30.0)
    # The fabric connector builds its store from the same containers.
    flow = config.groups["dataflow"]
    assert flow._fabric_groups["storage"].container_count() == 8  # type: ignore[attr-defined]
    assert {"container_down", "link_partition"} <= storage.takes_faults()
    for folder in cleanup:
        Path(folder).rmdir()


SMALL_FAULTS = [
    "recipe=composite/carbon_faults",
    "energy=none",
    "fl.rounds=4",
    "fl.clients_per_task=2",
    "scenario.policy=fixed",  # the same devices each round, with faults or without
    *(f"sites.{s}.devices=2" for s in ("de", "gb", "fr", "pl")),
]


@pytest.mark.slow
@pytest.mark.service
def test_under_a_lost_container_a_killed_worker_and_a_broker_restart_nothing_is_lost(
    workdir: Path,
) -> None:
    import mlflow

    from framework.cli import main

    assert main(["run", *SMALL_FAULTS]) == 0
    assert main(["run", *SMALL_FAULTS, "faults.schedule=[]"]) == 0
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'results' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["composite/carbon_faults"])
    jobs = runs[runs["tags.loom.run_type"] == "job"].sort_values("start_time")
    faulted, calm = jobs.iloc[0], jobs.iloc[1]
    assert faulted["metrics.faults_injected"] == 3 and faulted["metrics.faults_not_injected"] == 0
    for kind in ("container_down", "worker_kill", "broker_restart"):
        assert faulted[f"metrics.faults_{kind}"] == 1
    assert faulted["metrics.data_fabric_containers_down"] == 1
    log = (Path(faulted["tags.loom.run_dir"]) / "trial-000" / "faults.jsonl").read_text()
    assert '"targets":["de"]' in log and "de: SIGKILL pid" in log  # a worker of de's pool
    for job in (faulted, calm):  # every round, every event, every object
        assert job["metrics.rounds_run"] == 4 and job["metrics.plans_received"] == 4
        assert job["metrics.round_events"] == 5 and job["metrics.events_lost"] == 0
        assert job["metrics.store_keys_leaked"] == 0 and job["metrics.store_bytes_leaked"] == 0
        assert job["metrics.data_fabric_chunks_unrepaired"] == 0
        # The chunks the containers moved are charged at their sites: every site's
        # containers moved bytes, and the rounds' shares add up to the fabric's count.
        moved = {
            site: job[f"metrics.data_fabric_bytes_moved_{site}-c0"]
            + job[f"metrics.data_fabric_bytes_moved_{site}-c1"]
            for site in ("cloud", "de", "gb", "fr", "pl")
        }
        assert all(n > 0 for n in moved.values()), moved
        assert job["metrics.data_fabric_bytes_moved"] == sum(moved.values())
        assert 0 < job["metrics.bytes_fabric"] <= job["metrics.data_fabric_bytes_moved"]
        assert job["metrics.carbon_storage_g"] > 0
        assert 0 < job["metrics.storage_carbon_share"] < 1
        rounds_dir = Path(job["tags.loom.run_dir"]) / "trial-000"
        rounds = [json.loads(x) for x in (rounds_dir / "rounds.jsonl").read_text().splitlines()]
        assert sum(r["carbon_storage_g"] for r in rounds) == pytest.approx(
            job["metrics.carbon_storage_g"]
        )
    assert abs(faulted["metrics.final_accuracy"] - calm["metrics.final_accuracy"]) <= 0.01


def test_sites_that_cannot_be_read_give_one_error_not_a_wrong_fault_target_too() -> None:
    with pytest.raises(ConfigError) as caught:
        Composer().compose(["recipe=composite/carbon_faults", "sites.de.workers=0"])
    assert caught.value.problems == [
        "sites.de.workers=0: Input should be greater than or equal to 1"
    ]
