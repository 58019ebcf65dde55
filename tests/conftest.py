"""Shared fixtures: a quiet Prefect, a session-scoped Prefect test harness, a project folder."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Before anything imports prefect.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ["LOOM_ROOT"] = str(ROOT)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Silence librdkafka's log: clients a test left behind on a killed broker (bounded
    closes give up on them) would go on logging into handlers pytest has closed."""
    import logging

    del session, exitstatus
    logging.getLogger("loom.librdkafka").disabled = True


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One throwaway Prefect API for every engine test (starting one costs seconds)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
        _drain_prefect_services(timeout_s=60)


def _drain_prefect_services(timeout_s: float) -> None:
    """Drain Prefect's log and event workers with a time limit before its harness does.

    The harness drains them with none, and one worker's drain never ended at a pytest
    worker's session end (``pytest -n 2 tests/components/scenarios``, at b9f516e too): the
    session hung there (why that service never signals its end was not found). A service
    that has not drained after ``timeout_s`` is named; stopping it took it out of Prefect's
    registry, so the harness's own drain no longer waits for it.
    """
    import concurrent.futures
    import warnings

    from prefect._internal.concurrency.services import _QueueServiceBase

    with _QueueServiceBase._instance_lock:
        services = list(_QueueServiceBase._instances.values())
    draining = {service._drain(): type(service).__name__ for service in services}
    _, hung = concurrent.futures.wait(draining, timeout=timeout_s)
    if hung:
        names = sorted(draining[future] for future in hung)
        warnings.warn(
            f"Prefect services still draining after {timeout_s:g} s, left behind: {names}",
            stacklevel=1,
        )


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder: results/ and the MLflow store land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


PLUGIN_SOURCE = '''
"""A third-party Loom plugin, installed only for the tests."""
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar, Literal

from pydantic import Field

from components.base import RunContext, ScenarioConfig
from components.executor.protocol import ExecutorConfig

ATTEMPTS = {"count": 0}


class InlineExecutor(ThreadPoolExecutor):
    def __init__(self, workers: int) -> None:
        super().__init__(max_workers=workers)
        self.workers = workers


class InlineExecutorConfig(ExecutorConfig):
    """One-thread executor from a plugin package."""

    kind: Literal["inline"] = "inline"
    workers: int = Field(1, ge=1, description="threads")

    def build(self):
        return InlineExecutor(self.workers)


class FlakyScenarioConfig(ScenarioConfig):
    """Fails its first ``fail_first`` attempts, then records a metric."""

    kind: Literal["flaky"] = "flaky"
    requires: ClassVar[tuple[str, ...]] = ()
    fail_first: int = Field(1, ge=0)
    crash: bool = Field(False, description="end the process at once, as a segfault would")
    sleep_s: float = Field(0.0, ge=0.0)
    meet: str | None = Field(None, description="folder where `parties` jobs wait for each other")
    parties: int = Field(2, ge=1)

    def build(self):
        return FlakyScenario(self.fail_first, self.crash, self.sleep_s, self.meet, self.parties)


class FlakyScenario:
    def __init__(self, fail_first: int, crash: bool = False, sleep_s: float = 0.0,
                 meet: str | None = None, parties: int = 2) -> None:
        self.fail_first = fail_first
        self.crash = crash
        self.sleep_s = sleep_s
        self.meet = meet
        self.parties = parties

    def run(self, ctx: RunContext) -> None:
        import os
        import pathlib
        import time
        import uuid

        time.sleep(self.sleep_s)
        if self.meet is not None:  # proof of overlap: every party must be running at once
            folder = pathlib.Path(self.meet)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / uuid.uuid4().hex).touch()
            deadline = time.monotonic() + 120
            while len(list(folder.iterdir())) < self.parties:
                if time.monotonic() > deadline:
                    raise RuntimeError("the other jobs never ran at the same time")
                time.sleep(0.05)
        if self.crash:
            os._exit(7)
        ATTEMPTS["count"] += 1
        if ATTEMPTS["count"] <= self.fail_first:
            raise RuntimeError(f"flaky attempt {ATTEMPTS['count']}")
        ctx.log_metric("attempts_seen", ATTEMPTS["count"])
'''


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Install a tiny plugin distribution (module + entry points) on sys.path."""
    from framework import registry

    site = tmp_path_factory.mktemp("site")
    (site / "loom_demo_plugin.py").write_text(PLUGIN_SOURCE)
    info = site / "loom_demo_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: loom-demo-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent("""
        [loom.executor]
        inline = loom_demo_plugin:InlineExecutorConfig

        [loom.scenario]
        flaky = loom_demo_plugin:FlakyScenarioConfig
    """)
    )
    sys.path.insert(0, str(site))
    registry.refresh()
    yield "loom_demo_plugin"
    sys.path.remove(str(site))
    registry.refresh()
