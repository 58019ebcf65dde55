"""The TaPS applications: every result checked, on each data flow, with no leaked keys."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from pydantic import ValidationError

from components.base import RunContext
from components.dataflow.base import ByValueConfig
from components.dataflow.proxystore_flow import ProxyStoreConfig, ProxyStoreFlow
from components.executors.cholesky import CholeskyConfig
from components.executors.mapreduce import MapReduceConfig, chunks, count_words
from components.executors.process import ProcessExecutorConfig


@pytest.fixture(params=["by_value", "proxystore"], scope="module")
def components(request: pytest.FixtureRequest) -> Iterator[dict[str, object]]:
    """A process pool and the data flow under test."""
    flow = (
        ByValueConfig() if request.param == "by_value" else ProxyStoreConfig(threshold_bytes=10_000)
    )
    with ExitStack() as stack:
        yield {"executor": stack.enter_context(ProcessExecutorConfig(max_workers=2).build()),
               "dataflow": stack.enter_context(flow.build())}  # fmt: skip


def _ctx(components: dict[str, object], tmp_path: Path) -> RunContext:
    return RunContext(components=components, seed=3, trial=0, run_dir=tmp_path)


def test_mapreduce_counts_every_word(components: dict[str, object], tmp_path: Path) -> None:
    # TaPS's chunking drops the last file: 8 files x 2000 words gave a total of 14,000.
    ctx = _ctx(components, tmp_path)
    MapReduceConfig(files=8, words_per_file=2000, vocabulary=300, map_tasks=3).build().run(ctx)
    assert ctx.metrics["words_counted"] == 16_000
    assert ctx.metrics["result_verified"] == 1
    assert ctx.metrics.get("store_keys_leaked", 0) == 0
    assert sum(len(part) for part in chunks(list("abcdefgh"), 3)) == 8
    assert count_words("a b", "b") == {"a": 1, "b": 2}


def test_cholesky_matches_numpy(components: dict[str, object], tmp_path: Path) -> None:
    ctx = _ctx(components, tmp_path)
    CholeskyConfig(matrix_size=240, block_size=60).build().run(ctx)
    assert ctx.metrics["tasks"] == 4 + 6 + 10  # potrf + trsm + update for 4 x 4 tiles
    assert ctx.metrics["result_verified"] == 1 and ctx.metrics["max_abs_error"] < 1e-9
    if isinstance(components["dataflow"], ProxyStoreFlow):
        assert ctx.metrics["data_proxied_results"] == 20  # 60 x 60 x 8 B tiles >= 10 kB
    assert ctx.metrics.get("store_keys_leaked", 0) == 0


def test_bad_app_settings_are_refused() -> None:
    with pytest.raises(ValidationError, match="block_size=300 does not divide matrix_size=1000"):
        CholeskyConfig(block_size=300)
    with pytest.raises(ValidationError, match="map_tasks=11 > files=10"):
        MapReduceConfig(map_tasks=11)
