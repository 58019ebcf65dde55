"""A pool per site: tasks run in their site's pool, depend across pools, and faults hit a site."""

from __future__ import annotations

import os
import threading
import time
from typing import Literal

import pytest

from components.executor.dask import DaskExecutorConfig
from components.executor.process import ProcessExecutorConfig
from components.executor.protocol import ExecutorConfig, LoomExecutor
from components.executor.sited import SitedExecutor
from components.executor.thread import ThreadExecutorConfig
from components.faults import Fault
from components.runtime.taskpath import TaskPath


def _where(delay_s: float = 0.0) -> tuple[int, int]:
    time.sleep(delay_s)
    return os.getpid(), threading.get_ident()


def _add(*values: int) -> int:
    return sum(values)


def test_each_sites_tasks_run_in_its_own_pool_of_its_own_size() -> None:
    config = ThreadExecutorConfig().at_sites([("cloud", 1), ("edge", 2)])
    with config.build() as executor:
        assert isinstance(executor, SitedExecutor) and executor.workers == 3
        with TaskPath(executor) as path:
            assert path.sites == ["cloud", "edge"]
            cloud = [path.submit(_where, 0.01, site="cloud") for _ in range(6)]
            edge = [path.submit(_where, 0.05, site="edge") for _ in range(6)]
            unplaced = path.submit(_where)  # no site: the first pool's
            path.wait()
    threads = {
        s: {h.value[1] for h in handles} for s, handles in (("cloud", cloud), ("edge", edge))
    }
    assert len(threads["cloud"]) == 1  # one worker: its six tasks queued for it
    assert len(threads["edge"]) == 2  # two workers, both kept busy
    assert not threads["cloud"] & threads["edge"]
    assert unplaced.value[1] in threads["cloud"]
    assert {h.record()["site"] for h in edge} == {"edge"}


def test_a_task_depends_on_tasks_of_other_sites() -> None:
    sited = ThreadExecutorConfig().at_sites([("cloud", 1), ("de", 1), ("fr", 1)])
    with sited.build() as executor, TaskPath(executor) as path:
        de = path.submit(_add, 1, 2, site="de")
        fr = path.submit(_add, 3, 4, site="fr")
        total = path.submit(_add, de, fr, site="cloud")
        path.wait()
    assert total.success and total.value == 10
    with (
        sited.build() as executor,
        pytest.raises(KeyError, match="site 'pl' has no pool; the executor's sites: cloud, de, fr"),
    ):
        TaskPath(executor).submit(_add, 1, site="pl")


def test_one_pool_ignores_sites() -> None:
    with ThreadExecutorConfig(max_workers=2).build() as executor, TaskPath(executor) as path:
        assert path.sites == []
        handle = path.submit(_add, 1, 1, site="anywhere")
        path.wait()
    assert handle.value == 2 and "site" not in handle.record()


@pytest.mark.slow
def test_a_worker_fault_on_a_site_kills_a_worker_of_that_sites_pool_only() -> None:
    config = ProcessExecutorConfig(max_workers=1).at_sites([("cloud", 1), ("de", 1)])
    assert config.fault_target_names("worker_kill") == ["cloud", "de"]
    assert ProcessExecutorConfig().fault_target_names("worker_kill") is None
    with config.build() as executor, TaskPath(executor) as path:
        before = {s: path.submit(_where, site=s) for s in ("cloud", "de")}
        path.wait()
        pids = {s: h.value[0] for s, h in before.items()}
        assert pids["cloud"] != pids["de"]
        assert executor.fault_targets("worker_kill") == ["cloud", "de"]
        done = executor.inject("worker_kill", ["de"], Fault(kind="worker_kill"))
        assert done.detail == f"de: SIGKILL pid {pids['de']}"
        time.sleep(0.5)
        after = {s: path.submit(_where, site=s) for s in ("cloud", "de")}
        path.wait()
    assert all(h.success for h in after.values())
    assert after["cloud"].value[0] == pids["cloud"]  # the other site's worker lives on
    assert after["de"].value[0] != pids["de"]  # a fresh worker serves the site
    assert executor.pools["de"].pools_started == 2  # type: ignore[attr-defined]
    assert executor.pools["cloud"].pools_started == 1  # type: ignore[attr-defined]


class _OwnBuild(ExecutorConfig):
    """A plugin's executor that builds itself: it has no pool to copy per site."""

    kind: Literal["own"] = "own"

    def build(self) -> LoomExecutor:
        return ThreadExecutorConfig(max_workers=1).build()


def test_an_option_that_builds_its_own_executor_cannot_stand_at_sites() -> None:
    assert not _OwnBuild().places_at_sites()
    with pytest.raises(ValueError, match="executor=own does not place pools at sites"):
        _OwnBuild().at_sites([("cloud", 1)])
    assert not DaskExecutorConfig(address="tcp://127.0.0.1:1").places_at_sites()
    assert DaskExecutorConfig().places_at_sites()
