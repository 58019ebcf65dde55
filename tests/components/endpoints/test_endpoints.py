"""The endpoints: the ground truth that scores a placement, the predictors, live pools."""

from __future__ import annotations

import numpy as np
import pytest

from components.endpoints._ground_truth import execute
from components.endpoints._predictors import (
    LeastSquaresPredictor,
    TablePredictor,
    relative_error,
)
from components.endpoints.live import LiveEndpointsConfig
from components.endpoints.protocol import Site, TaskPlacement
from components.task_placement.protocol import Problem
from components.task_placement.round_robin import RoundRobinTasks


def test_the_ground_truth_charges_warm_blocks_for_the_run_and_cold_ones_while_up() -> None:
    sites = (
        Site("warm", 1, 1, static_w=1.0),
        Site("cold", 2, 0, static_w=10.0, shutdown_s=2.0, cold_start_s=5.0),
    )
    runtime = np.full((3, 2), 4.0)
    energy = np.array([[1.0, 9.0], [1.0, 2.0], [1.0, 3.0]])
    placement = TaskPlacement(np.array([0, 1, 1]), np.arange(3))
    outcome = execute(placement, sites, runtime, energy)
    assert outcome.makespan_s == 9.0  # the cold block is ready at 5 and runs both tasks
    assert outcome.static_j == pytest.approx(1.0 * 9 + 10.0 * (9 + 2 - 5))
    assert outcome.dynamic_j == pytest.approx(1 + 2 + 3)
    assert outcome.start_s.tolist() == [0.0, 5.0, 5.0]
    assert outcome.tasks == {"warm": 1, "cold": 2}
    assert outcome.edp_kj_s == pytest.approx((9 + 60 + 6) / 1000 * 9)
    with pytest.raises(ValueError, match="outside the strategy's endpoints"):
        execute(placement, sites, runtime, energy, used=(0,))


def test_least_squares_learns_runtime_and_power_per_function_and_endpoint() -> None:
    predictor = LeastSquaresPredictor(["f", "g"], ["a", "b"], features=1)
    for size in (10.0, 20.0, 40.0):
        for e, (slope, watts) in enumerate([(0.01, 10.0), (0.03, 2.0)]):
            runtime = 0.5 + slope * size
            predictor.observe(0, e, [size], runtime, watts * runtime)
            predictor.observe(1, e, [size], 2.0, 4.0)
    predictor.fit()
    runtime, energy = predictor.predict(np.array([0, 1]), np.array([[30.0], [30.0]]))
    assert runtime[0] == pytest.approx([0.8, 1.4]) and energy[0] == pytest.approx([8.0, 2.8])
    assert runtime[1] == pytest.approx([2.0, 2.0]) and energy[1] == pytest.approx([4.0, 4.0])
    fresh = LeastSquaresPredictor(["f"], ["a", "b"], features=1)
    fresh.observe(0, 0, [1.0], 1.0, 1.0)
    with pytest.raises(ValueError, match="no measured task to learn from for: f on b"):
        fresh.fit()


def test_the_table_predicts_a_batch_in_one_lookup_and_the_error_is_the_authors() -> None:
    table = TablePredictor(["f", "g"], ["a"], {"f": {"a": (1.0, 2.0)}, "g": {"a": (3.0, 4.0)}})
    runtime, energy = table.predict(np.array([1, 0, 1]), np.zeros((3, 0)))
    assert runtime[:, 0].tolist() == [3.0, 1.0, 3.0] and energy[:, 0].tolist() == [4.0, 2.0, 4.0]
    assert relative_error(np.array([1.0, 3.0]), np.array([1.0, 1.0])) == pytest.approx(0.25)


@pytest.mark.slow
def test_live_endpoints_run_on_their_own_pools_and_a_cold_one_waits() -> None:
    from components.endpoints.live import LiveEndpoints

    cell = {"runtime_s": 0.01, "energy_j": 0.1}
    config = LiveEndpointsConfig(
        sites={
            "warm": {"executor": {"kind": "thread", "max_workers": 1}, "min_blocks": 1},
            "dask": {
                "executor": {"kind": "dask", "n_workers": 1},
                "cold_start_s": 0.5,
                "static_w": 10.0,
                "shutdown_s": 2.0,
            },
        },
        functions=["matmul", "thumbnail"],
        profiles={
            "matmul": {"warm": cell, "dask": cell},
            "thumbnail": {"warm": cell, "dask": cell},
        },
        scale=0.2,
    )
    with LiveEndpoints(config) as endpoints:
        assert [s.slots for s in endpoints.sites] == [1, 1]
        workload = endpoints.workload(3, "interleaved", 0)
        placement = RoundRobinTasks().place(
            Problem(endpoints.plan_sites, np.ones((6, 2)), np.ones((6, 2)))
        )
        executed = endpoints.run(placement, workload, (0, 1), watts_per_thread=10.0)
    assert executed.tasks == {"warm": 3, "dask": 3}
    on_dask = placement.endpoint == 1
    assert executed.start_s[on_dask].min() >= 0.5  # the emulated cold start
    assert executed.start_s[~on_dask].min() < 0.5
    assert (executed.runtime_s > 0).all() and (executed.energy_j > 0).all()
    # The cold block is charged from its start to its last task's end plus the idle tail.
    finish = (executed.start_s + executed.runtime_s)[on_dask].max()
    assert executed.static_j == pytest.approx(10.0 * (finish + 2.0 - 0.5))
