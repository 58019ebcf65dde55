"""Energy meters, machine profiles, carbon series and pricing: every run measured and charged."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from components.energy._model import ModelMeter
from components.energy._rapl import CounterSum, RaplMeter, RaplUnavailable, find_zones
from components.energy.auto import AutoEnergyConfig
from components.energy.carbon_series import CarbonSeries, CarbonSeriesError
from components.energy.model import ModelEnergyConfig
from components.energy.profiles import ENDPOINTS, local_profile
from components.energy.protocol import NoMeter
from components.energy.pyjoules import (
    PyJoulesEnergyConfig,
    PyJoulesMeter,
    PyJoulesUnavailable,
    pyjoules_devices,
)
from components.energy.rapl import RaplEnergyConfig

BURN = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass\n"


def _zone(root: Path, name: str, label: str, energy: int, max_uj: int = 1_000_000) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "name").write_text(label + "\n")
    (folder / "energy_uj").write_text(f"{energy}\n")
    (folder / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return folder / "energy_uj"


@pytest.fixture
def powercap(tmp_path: Path) -> Path:
    root = tmp_path / "powercap"
    _zone(root, "intel-rapl:0", "package-0", 900_000)
    _zone(root, "intel-rapl:0:0", "core", 5)  # inside the package: not added again
    _zone(root, "intel-rapl:0:2", "dram", 100)
    _zone(root, "intel-rapl:1", "package-1", 10)
    _zone(root, "intel-rapl:2", "psys", 7)  # the platform zone overlaps the packages
    return root


def test_rapl_zones_are_packages_and_dram(powercap: Path) -> None:
    names = [z.name for z in find_zones(powercap)]
    assert names == ["intel-rapl:0:package-0", "intel-rapl:0:2:dram", "intel-rapl:1:package-1"]
    with pytest.raises(RaplUnavailable, match="does not exist"):
        find_zones(powercap / "missing")
    empty = powercap.parent / "empty"
    _zone(empty, "intel-rapl:0:0", "core", 1)
    with pytest.raises(RaplUnavailable, match="no package or dram"):
        find_zones(empty)


def test_rapl_counters_wrap_around_once_per_sample(powercap: Path) -> None:
    counters = CounterSum(find_zones(powercap))
    (powercap / "intel-rapl:0" / "energy_uj").write_text("50000\n")  # wrapped: 900k → 1M → 50k
    (powercap / "intel-rapl:0:2" / "energy_uj").write_text("400\n")
    (powercap / "intel-rapl:1" / "energy_uj").write_text("1010\n")
    assert counters.sample() == (1_000_000 - 900_000 + 50_000) + 300 + 1000
    (powercap / "intel-rapl:0" / "energy_uj").write_text("60000\n")
    assert counters.sample() == 151_300 + 10_000


def test_the_rapl_meter_measures_a_share_of_the_package(powercap: Path) -> None:
    meter = RaplEnergyConfig(powercap=str(powercap), sample_s=0.05).build()
    assert isinstance(meter, RaplMeter)
    measurement = meter.start()
    subprocess.run([sys.executable, "-c", BURN.format(seconds=0.3)], check=True)
    (powercap / "intel-rapl:1" / "energy_uj").write_text("2000010\n")  # 2 J on package 1
    time.sleep(0.15)
    reading = measurement.stop()
    assert reading.source == "measured"
    assert 0 < reading.joules <= 2.0 + 1e-9  # the run's CPU share of what the counters saw
    assert reading.cpu_s >= 0.25


def test_without_rapl_auto_models_and_rapl_falls_back_in_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert isinstance(AutoEnergyConfig(powercap=str(tmp_path / "no")).build(), ModelMeter)
        assert not caplog.records  # auto: the model is the plan, not a failure
        meter = RaplEnergyConfig(powercap=str(tmp_path / "no"), fallback="none").build()
    assert isinstance(meter, NoMeter)
    (record,) = caplog.records
    assert "falling back to energy=none" in record.getMessage()
    assert "does not exist" in record.getMessage()


def test_pyjoules_without_devices_falls_back_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    if Path("/sys/class/powercap/intel-rapl").exists():
        pytest.skip("this machine has RAPL: pyJoules finds devices here")
    with pytest.raises(PyJoulesUnavailable, match="no "):
        pyjoules_devices()
    with caplog.at_level(logging.WARNING):
        meter = PyJoulesEnergyConfig().build()
    assert isinstance(meter, ModelMeter) and len(caplog.records) == 1
    reading = meter.start().stop()
    assert reading.source == "estimated" and reading.wall_s > 0


def test_a_pyjoules_failure_while_measuring_keeps_the_result(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import pyJoules.energy_meter

    class Broken:
        """pyJoules 0.5.1's meter when it has no device: stop() raises TypeError."""

        def __init__(self, devices: Any) -> None:
            del devices

        def start(self, tag: str) -> None:
            del tag

        def stop(self) -> None:
            raise TypeError("reduce() of empty iterable with no initial value")

    monkeypatch.setattr(pyJoules.energy_meter, "EnergyMeter", Broken)
    meter = PyJoulesMeter([object()], ModelEnergyConfig().model_meter())
    with caplog.at_level(logging.WARNING):
        reading = meter.start().stop()
    assert reading.source == "estimated" and reading.joules > 0  # the estimate, not nothing
    assert "TypeError" in caplog.records[0].getMessage()


def _model(watts: float = 10.0, idle: float = 0.0) -> ModelMeter:
    return ModelEnergyConfig(watts_per_thread=watts, idle_w=idle).model_meter()


def test_the_model_counts_a_child_process_s_cpu_burn() -> None:
    meter = _model()
    measurement = meter.start()
    done = subprocess.run(
        [sys.executable, "-c", BURN.format(seconds=1.0) + "print(time.process_time())"],
        check=True,
        capture_output=True,
        text=True,
    )
    reading = measurement.stop()
    child_cpu = float(done.stdout)
    assert reading.source == "estimated"
    assert reading.joules == pytest.approx(child_cpu * 10.0, rel=0.10)


def test_the_model_counts_a_live_child_only_from_the_start() -> None:
    code = BURN.format(seconds=0.5) + "import sys\nprint(time.process_time(), flush=True)\n"
    code += BURN.format(seconds=0.5) + "sys.stdin.read()\n"
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    before = float(child.stdout.readline())  # burnt before the measurement starts
    measurement = _model().start()
    time.sleep(0.8)  # the second half-second burn, while measured
    reading = measurement.stop()
    child.communicate("")
    assert before >= 0.45
    assert reading.cpu_s == pytest.approx(0.5, abs=0.15)  # not the whole second


def test_idle_power_is_charged_by_wall_time_and_share() -> None:
    meter = ModelEnergyConfig(watts_per_thread=1.0, idle_w=100.0, share=0.25).model_meter()
    measurement = meter.start()
    time.sleep(0.2)
    reading = measurement.stop()
    assert reading.idle_j == pytest.approx(100.0 * reading.wall_s * 0.25)
    assert reading.constants["energy.assumed.idle_w"] == "100"


def test_profiles() -> None:
    zen3 = ENDPOINTS["zen3"]
    assert (zen3.cores, zen3.tdp_w, zen3.idle_w, zen3.embodied_g_per_kwh) == (128, 560, 120, 550)
    assert zen3.carbon_intensity_g_per_kwh == 389
    assert zen3.watts_per_thread == pytest.approx((560 - 120) / 128)
    local = local_profile()
    assert local.cores >= 1 and local.cpu_model
    assert ModelEnergyConfig(profile="desktop", idle_w=7.0).machine().idle_w == 7.0


def _series(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ci.csv"
    path.write_text(text)
    return path


def test_a_carbon_series_is_integrated_over_the_run(tmp_path: Path) -> None:
    path = _series(tmp_path, "timestamp,g_per_kwh\n0,100\n100,300\n200,200\n")
    series = CarbonSeries.read(path)
    assert series.mean(50, 150) == pytest.approx(200.0)  # half at 100, half at 300
    assert series.mean(100, 100) == 300.0
    iso = tmp_path / "iso.csv"
    iso.write_text("2026-01-01T00:00:00Z,400\n2026-01-01T01:00:00Z,200\n")
    start = CarbonSeries.read(iso).times[0]
    assert CarbonSeries.read(iso).mean(start, start + 7200) == pytest.approx(300.0)
    meter = ModelEnergyConfig(carbon_intensity=str(path)).model_meter()
    assert meter.intensity(0, 200) == pytest.approx(200.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("t,g\n0,100\n10,abc\n", "line 3: intensity 'abc' must be a number"),
        ("t,g\n0,100\n10,-5\n", "line 3: intensity '-5'"),
        ("t,g\n0,100\nyesterday,200\n", "line 3: timestamp 'yesterday' is neither"),
        ("t,g\n0,100\n20,200\n10,300\n", "line 4: timestamp '10' does not come after"),
        ("t,g\n0,100\n10,100\n20,100\n500,100\n510,100\n", "gap of 480 s after 20"),
        ("t,g\n0,100\n", "at least two rows"),
    ],
)
def test_bad_carbon_series_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = _series(tmp_path, text)
    with pytest.raises(CarbonSeriesError, match=message):
        CarbonSeries.read(path)
    with pytest.raises(ValidationError, match=f"(?s)carbon_intensity.*{message}"):
        ModelEnergyConfig(carbon_intensity=str(path))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"watts_per_thread": -3.0}, "watts_per_thread"),
        ({"idle_w": -1.0}, "idle_w"),
        ({"profile": "mars"}, "profile"),
        ({"share": 0.0}, "share"),
        ({"carbon_intensity": -2.0}, "carbon_intensity"),
        ({"carbon_intensity": "no/such.csv"}, "cannot read the carbon series"),
    ],
)
def test_bad_energy_configs_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ModelEnergyConfig(**overrides)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_every_trial_is_metered_and_charged(workdir: Path) -> None:
    import json

    import mlflow

    from framework.cli import main

    status = main(
        [
            "run",
            "recipe=taps/overhead",
            "scenario.tasks=50",
            "repeats=2",
            "energy=model",
            "energy.profile=zen3",
            "pricing=carbon",
        ]
    )
    assert status == 0
    (job,) = Path("results", "taps", "overhead").glob("*/metrics.json")
    record = json.loads(job.read_text())
    for trial in record["trials"]:
        assert trial["energy_j"] > 0 and trial["charge"] == trial["charge_carbon_g"] > 0
        # CPU time of processes counts in clock ticks (10 ms): a 50-task trial may read 0.
        assert trial["charge_node_hours"] > 0 and trial["cpu_s"] >= 0
        assert 0 < trial["task_energy_j"] == pytest.approx(trial["task_cpu_s"] * 440 / 128)
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'results' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["taps/overhead"])
    assert set(runs["tags.energy.source"]) == {"estimated"}
    assert set(runs["tags.pricing.scheme"]) == {"carbon"}
    assert set(runs["params.energy.assumed.watts_per_thread"].dropna()) == {f"{440 / 128:g}"}


def _burn(seconds: float) -> float:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
    return seconds


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_each_task_s_cpu_time_is_recorded_on_its_worker(kind: str) -> None:
    from components.executor.process import ProcessExecutorConfig
    from components.executor.thread import ThreadExecutorConfig
    from components.runtime.taskpath import TaskPath

    config = (
        ThreadExecutorConfig(max_workers=2)
        if kind == "thread"
        else ProcessExecutorConfig(max_workers=2)
    )
    with config.build() as executor, TaskPath(executor) as path:
        burners = [path.submit(_burn, 0.2) for _ in range(2)]
        sleepers = [path.submit(time.sleep, 0.2) for _ in range(2)]
        tiny = [path.submit(abs, -i) for i in range(200)]
        assert path.wait(60)
    for handle in burners:
        assert handle.cpu_s == pytest.approx(0.2, abs=0.05)
    for handle in sleepers:
        assert handle.cpu_s < 0.02  # asleep: wall time, not CPU time
    assert sum(h.cpu_s for h in tiny) < 0.1 and all(h.cpu_s >= 0 for h in tiny)
    assert "cpu_s" in burners[0].record()
