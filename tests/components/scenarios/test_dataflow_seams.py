"""Where a scenario meets the data flow: nothing accepted is silently a no-op."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from pathlib import Path

import pytest

from components.base import RunContext
from components.dataflow.by_value import ByValueConfig
from components.dataflow.proxystore_flow import ProxyStoreConfig
from components.executor.thread import ThreadExecutorConfig
from components.fl.flight import FlightConfig
from components.fl.topology import TwoTier
from components.scenarios.federated import FederatedConfig
from components.scenarios.synthetic import SyntheticScenarioConfig


def _run(scenario: object, flow: object, tmp_path: Path, **more: object) -> RunContext:
    with ExitStack() as stack:
        components = {
            "executor": stack.enter_context(ThreadExecutorConfig(max_workers=2).build()),
            "dataflow": stack.enter_context(flow.build()),  # type: ignore[attr-defined]
            **more,
        }
        tmp_path.mkdir(parents=True, exist_ok=True)
        ctx = RunContext(components=components, seed=1, trial=0, run_dir=tmp_path)
        scenario.build().run(ctx)  # type: ignore[attr-defined]
    return ctx


def test_fl_moves_its_model_updates_by_reference_under_proxystore(tmp_path: Path) -> None:
    # A 10 kB model is under the default 100 kB threshold: by the rule, nothing would move.
    fl = FlightConfig(topology=TwoTier(workers=4), rounds=2, clients_per_task=1).build()
    flow = ProxyStoreConfig()
    assert flow.threshold_bytes == 100_000
    ctx = _run(FederatedConfig(), flow, tmp_path, fl=fl)
    # Per round, 4 trainings (one worker each) and the aggregate: 10 results by reference.
    assert ctx.metrics["data_proxied_results"] == 10
    assert ctx.metrics["data_proxied_inputs"] >= 2  # the global model, sent to the workers
    assert ctx.metrics["data_nothing_proxied"] == 0
    assert ctx.metrics["store_keys_leaked"] == 0
    by_value = _run(FederatedConfig(), ByValueConfig(), tmp_path / "v", fl=fl)
    assert by_value.metrics["final_accuracy"] == pytest.approx(ctx.metrics["final_accuracy"])


def test_a_by_reference_flow_that_moved_nothing_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    scenario = SyntheticScenarioConfig(tasks=6, payload_bytes=1024)
    with caplog.at_level(logging.WARNING, logger="components.runtime.trial"):
        ctx = _run(scenario, ProxyStoreConfig(), tmp_path)
    assert ctx.metrics["data_nothing_proxied"] == 1
    assert "proxied nothing in trial 0" in caplog.text
    assert "largest argument seen: 1,0" in caplog.text and "threshold_bytes" in caplog.text
    moved = _run(scenario, ProxyStoreConfig(threshold_bytes=512), tmp_path / "low")
    assert moved.metrics["data_nothing_proxied"] == 0
    assert "data_nothing_proxied" not in _run(scenario, ByValueConfig(), tmp_path / "v").metrics
