"""Against real servers: a Prefect API server and an MLflow tracking server on loopback.

Both are started from the installed packages (no network); the run goes through the CLI in a
fresh process, with ``PREFECT_API_URL`` set and ``tracking=mlflow_server``, and both servers are
then asked what they recorded.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from mlflow.tracking import MlflowClient

from components.loopback import free_port

pytestmark = [pytest.mark.slow, pytest.mark.service]

BIN = Path(sys.executable).parent
STARTUP_TIMEOUT_S = 240


@contextmanager
def _server(argv: list[str], health_url: str, log: Path, env: dict[str, str]) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{argv[0]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(health_url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{health_url} not up in {STARTUP_TIMEOUT_S} s:\n{log.read_text()[-3000:]}"
                )
            time.sleep(0.5)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Start ``prefect server`` and ``mlflow server``; yield their URLs."""
    base = tmp_path_factory.mktemp("servers")
    prefect_port, mlflow_port = free_port(), free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(base / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    env.pop("PREFECT_API_URL", None)
    prefect_url = f"http://127.0.0.1:{prefect_port}/api"
    mlflow_url = f"http://127.0.0.1:{mlflow_port}"
    with ExitStack() as stack:
        stack.enter_context(
            _server(
                [
                    str(BIN / "prefect"),
                    "server",
                    "start",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(prefect_port),
                ],
                f"{prefect_url}/health",
                base / "prefect.log",
                env,
            )
        )
        stack.enter_context(
            _server(
                [
                    str(BIN / "mlflow"),
                    "server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(mlflow_port),
                    "--workers",
                    "1",
                    "--backend-store-uri",
                    f"sqlite:///{base / 'mlflow.db'}",
                    "--artifacts-destination",
                    str(base / "artifacts"),
                ],
                f"{mlflow_url}/health",
                base / "mlflow.log",
                env,
            )
        )
        yield {"prefect": prefect_url, "mlflow": mlflow_url, "home": str(base / "client-home")}


def test_run_is_recorded_by_the_prefect_server_and_the_mlflow_server(
    servers: dict[str, str], tmp_path: Path
) -> None:
    env = {**os.environ, "PREFECT_API_URL": servers["prefect"], "PREFECT_HOME": servers["home"]}
    argv = [
        sys.executable,
        "-m",
        "framework",
        "run",
        "recipe=quickstart",
        "repeats=2",
        "tracking=mlflow_server",
        f"tracking.uri={servers['mlflow']}",
        "scenario.tasks=10",
        "scenario.plots=false",
    ]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert servers["mlflow"] in done.stdout  # the UI line points at the server's own UI

    flow_runs = httpx.post(f"{servers['prefect']}/flow_runs/filter", json={}, timeout=10).json()
    assert len(flow_runs) == 1
    flow_run = flow_runs[0]
    assert flow_run["state_type"] == "COMPLETED"
    assert {"recipe:quickstart", "scenario:synthetic"} <= set(flow_run["tags"])
    task_runs = httpx.post(f"{servers['prefect']}/task_runs/filter", json={}, timeout=10).json()
    names = sorted(t["task_key"].split("-")[0] for t in task_runs)
    assert names.count("trial") == 2 and {"setup", "teardown", "report"} <= set(names)

    client = MlflowClient(servers["mlflow"])
    experiment = client.get_experiment_by_name("quickstart")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    kinds = sorted(r.data.tags["loom.run_type"] for r in runs)
    assert kinds == ["job", "trial", "trial"]
    job = next(r for r in runs if r.data.tags["loom.run_type"] == "job")
    assert job.info.status == "FINISHED" and job.data.metrics["result_verified"] == 1.0
    assert {"config.yaml", "environment.json"} <= {
        a.path for a in client.list_artifacts(job.info.run_id)
    }
    assert not (tmp_path / "results" / "mlflow.db").exists()  # nothing went to the local store


def _this_machine_address() -> str | None:
    """A non-loopback IPv4 address of this machine, if it has one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the outgoing interface
        except OSError:
            return None
        host = str(sock.getsockname()[0])
    return None if host.startswith("127.") or host == "0.0.0.0" else host


@contextmanager
def _dask_cluster(host: str, workers: int, env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    address = f"tcp://{host}:{port}"
    quiet: dict[str, object] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                host,
                "--port",
                str(port),
                "--dashboard-address",
                ":0",
            ],
            env=env,
            **quiet,
        )
    ]  # type: ignore[call-overload]
    procs += [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                address,
                "--nthreads",
                "1",
                "--no-dashboard",
            ],
            env=env,
            **quiet,
        )  # type: ignore[call-overload]
        for _ in range(workers)
    ]
    try:
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=60)
        yield address
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_a_sweep_on_a_remote_dask_cluster_records_to_the_servers(
    servers: dict[str, str], tmp_path: Path
) -> None:
    """The remote path end to end: scheduler on a non-loopback address, MLflow and Prefect servers.

    The scheduler listens on this machine's network address, so Loom treats the cluster as
    remote: the local SQLite store is refused there and the jobs record to the MLflow server.
    """
    host = _this_machine_address()
    if host is None:
        pytest.skip("this machine has no non-loopback IPv4 address for a 'remote' scheduler")
    env = {**os.environ, "PREFECT_API_URL": servers["prefect"], "PREFECT_HOME": servers["home"]}
    with _dask_cluster(host, 2, env) as address:
        argv = [
            sys.executable,
            "-m",
            "framework",
            "run",
            "-m",
            "recipe=quickstart",
            "scenario.seed=0,1",
            "scenario.tasks=10",
            "scenario.plots=false",
            "runner=dask",
            f"runner.address={address}",
            "tracking=mlflow_server",
            f"tracking.uri={servers['mlflow']}",
        ]
        done = subprocess.run(
            argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
    assert done.returncode == 0, done.stderr[-3000:]

    client = MlflowClient(servers["mlflow"])
    experiment = client.get_experiment_by_name("quickstart")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], "tags.`loom.run_type` != 'trial'")
    sweeps = [r for r in runs if r.data.tags["loom.run_type"] == "sweep"]
    assert len(sweeps) == 1 and sweeps[0].data.params["sweep.jobs"] == "2"
    jobs = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == sweeps[0].info.run_id]
    assert len(jobs) == 2 and {r.info.status for r in jobs} == {"FINISHED"}
    assert {r.data.params["scenario.seed"] for r in jobs} == {"0", "1"}
    assert all(r.data.metrics["result_verified"] == 1.0 for r in jobs)

    task_runs = httpx.post(f"{servers['prefect']}/task_runs/filter", json={}, timeout=10).json()
    names = {t["name"] for t in task_runs}
    for job in (0, 1):  # each job's stages are task runs on the servers' Prefect, by job
        assert any(n.startswith(f"job-{job}-trial") for n in names), sorted(names)


def _descendants_alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if Path(f"/proc/{pid}").exists() and _not_zombie(pid)]


def _not_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _group_members(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:  # the process group, after the state and the parent
            members.append(int(stat.parent.name))
    return members


def _waiting_spare(folder: Path, not_this: int | None) -> int:
    """The pid of the spare waiting for a run (another than ``not_this``), once it waits."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            pid = int((folder / "spare.pid").read_text())
        except (OSError, ValueError):
            pid = None
        if pid is not None and pid != not_this and (folder / "spare.sock").exists():
            return pid
        time.sleep(0.2)
    raise AssertionError(f"no spare waiting in {folder}: {(folder / 'spare.log').read_text()}")


def test_loom_up_serves_later_runs_and_loom_down_leaves_nothing(tmp_path: Path) -> None:
    """loom up → a run that finds both servers (logs, artifacts, tags) → loom down."""
    import json

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "MLFLOW"))}

    def loom(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "framework", *args]
        return subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)

    started = loom("up")
    assert started.returncode == 0, started.stderr[-3000:]
    folder = tmp_path / "results/services"
    recorded = json.loads((folder / "services.json").read_text())
    groups = {name: _group_members(s["pid"]) for name, s in recorded.items()}
    spares = [_waiting_spare(folder, None)]
    try:
        assert loom("status").returncode == 0
        ran = loom("run", "scenario.tasks=3", "scenario.plots=false", "energy=none")
        assert ran.returncode == 0, ran.stderr[-3000:]
        assert "no-recipe/synthetic" in ran.stdout  # the spare printed to our stdout
        spares.append(_waiting_spare(folder, spares[0]))  # it took the run; a successor waits
        mlflow_url, prefect_api = recorded["mlflow"]["url"], recorded["prefect"]["url"] + "/api"
        assert mlflow_url in ran.stdout  # recorded to the server, not the local store

        flow_run = httpx.post(f"{prefect_api}/flow_runs/filter", json={}, timeout=10).json()[0]
        query = {"logs": {"flow_run_id": {"any_": [flow_run["id"]]}}}
        logs = httpx.post(f"{prefect_api}/logs/filter", json=query, timeout=10).json()
        lines = [f"{log['name']}: {log['message']}" for log in logs]
        assert any(line.startswith("framework.job: trial 1 of 1") for line in lines), lines
        query = {"artifacts": {"flow_run_id": {"any_": [flow_run["id"]]}}}
        artifacts = httpx.post(f"{prefect_api}/artifacts/filter", json=query, timeout=10).json()
        kinds = {a["key"]: a["type"] for a in artifacts}
        expected = {
            "no-recipe-synthetic-job-0": "table",
            "no-recipe-synthetic-job-0-mlflow": "markdown",
        }
        assert kinds == expected

        client = MlflowClient(mlflow_url)
        experiment = client.get_experiment_by_name("no-recipe/synthetic")
        assert experiment is not None
        assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
        (job,) = client.search_runs(
            [experiment.experiment_id], filter_string="tags.`loom.run_type` = 'job'"
        )
        assert job.data.tags["prefect.flow_run_id"] == flow_run["id"]
        assert job.data.tags["prefect.flow_run_url"].endswith(flow_run["id"])
        assert job.info.run_name.startswith("scenario.tasks=3 scenario.plots=false energy=none · ")
    finally:
        stopped = loom("down")
    assert stopped.returncode == 0 and "prefect" in stopped.stdout and "mlflow" in stopped.stdout
    left = {name: _descendants_alive(pids) for name, pids in groups.items()}
    left["spares"] = _descendants_alive(spares)
    assert left == {"prefect": [], "mlflow": [], "spares": []}
    assert loom("status").returncode == 1
