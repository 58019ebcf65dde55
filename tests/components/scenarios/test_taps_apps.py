"""The TaPS applications: every result checked, on each data flow, with no leaked keys."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from pydantic import ValidationError

from components.base import RunContext
from components.dataflow.by_value import ByValueConfig
from components.dataflow.proxystore_flow import ProxyStoreConfig, ProxyStoreFlow
from components.executor.process import ProcessExecutorConfig
from components.scenarios.cholesky import CholeskyConfig
from components.scenarios.mapreduce import MapReduceConfig, chunks, count_words
from components.scenarios.moldesign import MolDesignConfig
from components.scenarios.physics import PhysicsConfig, heightmap, surface_at


@pytest.fixture(params=["by_value", "proxystore"], scope="module")
def components(request: pytest.FixtureRequest) -> Iterator[dict[str, object]]:
    """A process pool and the data flow under test."""
    flow = (
        ByValueConfig() if request.param == "by_value" else ProxyStoreConfig(threshold_bytes=10_000)
    )
    with ExitStack() as stack:
        yield {
            "executor": stack.enter_context(ProcessExecutorConfig(max_workers=2).build()),
            "dataflow": stack.enter_context(flow.build()),
        }


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


def test_moldesign_steers_xtb_and_checks_its_best_molecule(
    components: dict[str, object], tmp_path: Path
) -> None:
    from components.scenarios.molecules import search_space

    ctx = _ctx(components, tmp_path)
    config = MolDesignConfig(
        search_size=600, initial_count=4, search_count=8, batch_size=2, inference_chunks=3
    )
    config.build().run(ctx)
    assert ctx.metrics["simulations"] == 8 and ctx.metrics["rounds"] == 2
    assert ctx.metrics["result_verified"] == 1  # coverage, plausible energies, recomputed best
    assert ctx.metrics["best_ie_ev"] >= ctx.metrics["initial_best_ie_ev"]
    assert ctx.metrics["tasks"] == 8 + 2 * (1 + 3 + 1)  # xTB runs + train, infer, combine
    if isinstance(components["dataflow"], ProxyStoreFlow):
        assert ctx.metrics["data_proxied_results"] >= 2  # each round's 600 predictions
    assert ctx.metrics.get("store_keys_leaked", 0) == 0
    assert (tmp_path / "moldesign-trial-000.png").exists()
    space = search_space(150, 3)
    assert len(set(space)) == 150 and space == search_space(150, 3)  # distinct, seeded


def test_physics_balls_rest_on_the_green(components: dict[str, object], tmp_path: Path) -> None:
    ctx = _ctx(components, tmp_path)
    config = PhysicsConfig(simulations=4, terrain_width=14, total_time=4.0)
    config.build().run(ctx)
    assert ctx.metrics["result_verified"] == 1  # resting on the surface; a rerun agrees
    assert ctx.metrics["balls_on_green"] >= 2  # something for the surface check to check
    assert ctx.metrics["balls_on_green"] + ctx.metrics["balls_off_green"] == 4
    if isinstance(components["dataflow"], ProxyStoreFlow):
        assert ctx.metrics["data_proxied_inputs"] == 4  # the 0.9 MB mesh, once per task
        assert ctx.metrics["data_bytes_by_reference_out"] == 0  # positions are small
    assert ctx.metrics.get("store_keys_leaked", 0) == 0
    height = heightmap(config, 3)
    assert height.min() == 0 and abs(height.max() - 3.0) < 1e-12  # TaPS divides by the max
    assert surface_at(height, 10, 0.0, 0.0) == height[0, 0]
    assert surface_at(height, 10, 15.0, 1.0) is None  # off the 14 m green


def test_physics_runs_on_threads_with_a_client_per_task(tmp_path: Path) -> None:
    from components.executor.thread import ThreadExecutorConfig

    with ThreadExecutorConfig(max_workers=4).build() as pool, ByValueConfig().build() as flow:
        ctx = _ctx({"executor": pool, "dataflow": flow}, tmp_path)
        PhysicsConfig(simulations=4, terrain_width=6, total_time=2.0).build().run(ctx)
    assert ctx.metrics["result_verified"] == 1 and ctx.metrics["tasks_failed"] == 0


def test_bad_app_settings_are_refused() -> None:
    with pytest.raises(ValidationError, match="initial_count=10 exceeds search_count=8"):
        MolDesignConfig(initial_count=10, search_count=8)
    with pytest.raises(ValidationError, match="search_count=300 exceeds search_size=200"):
        MolDesignConfig(search_count=300, search_size=200)
    with pytest.raises(ValidationError, match="block_size=300 does not divide matrix_size=1000"):
        CholeskyConfig(block_size=300)
    with pytest.raises(ValidationError, match="map_tasks=11 > files=10"):
        MapReduceConfig(map_tasks=11)
