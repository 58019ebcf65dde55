"""Machine profiles: what a machine draws and what its electricity and hardware emit.

The four endpoints are those of the green-access prototype (``reproducibility/
experiment_config.json``): cores, TDP per node, idle power, embodied-carbon rate and grid
carbon intensity. ``local`` describes this machine: its CPU model and hardware threads are
read, its power is a stated default per thread (no counter tells it on a VM).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field

from components.base import LoomModel

ProfileName = Literal["local", "desktop", "zen3", "cascade_lake", "ice_lake"]

# Stated defaults of `local`: a busy hardware thread of a current server CPU draws a few
# watts (a 16-thread 120 W part: 7.5 W); idle and embodied values of the prototype's Desktop;
# the world-average grid intensity codecarbon uses.
LOCAL_WATTS_PER_THREAD = 7.5
LOCAL_IDLE_W = 5.0
LOCAL_EMBODIED_G_PER_KWH = 376.0
WORLD_CARBON_INTENSITY = 475.0


class MachineProfile(LoomModel):
    """One machine (one node) as the accounting sees it."""

    name: str = Field(description="profile name")
    cpu_model: str = Field("", description="CPU model, where known")
    cores: int = Field(ge=1, description="hardware threads (the prototype's cores per node)")
    tdp_w: float = Field(gt=0, description="thermal design power of the node (W)")
    idle_w: float = Field(ge=0, description="power drawn when idle (W)")
    watts_per_thread: float = Field(gt=0, description="dynamic power of one busy thread (W)")
    embodied_g_per_kwh: float = Field(ge=0, description="embodied carbon per kWh (gCO2e/kWh)")
    carbon_intensity_g_per_kwh: float = Field(ge=0, description="grid intensity (gCO2e/kWh)")


def _endpoint(
    name: str, cores: int, tdp: float, idle: float, embodied: float, ci: float
) -> MachineProfile:
    # Dynamic power of a busy thread: the span from idle to TDP shared by the threads.
    return MachineProfile(
        name=name,
        cores=cores,
        tdp_w=tdp,
        idle_w=idle,
        watts_per_thread=(tdp - idle) / cores,
        embodied_g_per_kwh=embodied,
        carbon_intensity_g_per_kwh=ci,
    )


ENDPOINTS: dict[str, MachineProfile] = {
    "desktop": _endpoint("desktop", 16, 65.0, 5.0, 376.0, 502.0),
    "zen3": _endpoint("zen3", 128, 560.0, 120.0, 550.0, 389.0),
    "cascade_lake": _endpoint("cascade_lake", 48, 410.0, 136.0, 81.0, 502.0),
    "ice_lake": _endpoint("ice_lake", 80, 410.0, 190.0, 512.0, 389.0),
}


@cache
def cpu_model() -> str:
    """The CPU model name of this machine (``/proc/cpuinfo``), or ``unknown``."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def local_profile() -> MachineProfile:
    """The profile of this machine: its threads and CPU model, with the stated default powers."""
    threads = os.cpu_count() or 1
    return MachineProfile(
        name="local",
        cpu_model=cpu_model(),
        cores=threads,
        tdp_w=LOCAL_IDLE_W + LOCAL_WATTS_PER_THREAD * threads,
        idle_w=LOCAL_IDLE_W,
        watts_per_thread=LOCAL_WATTS_PER_THREAD,
        embodied_g_per_kwh=LOCAL_EMBODIED_G_PER_KWH,
        carbon_intensity_g_per_kwh=WORLD_CARBON_INTENSITY,
    )


def profile(name: ProfileName) -> MachineProfile:
    """The named profile."""
    return local_profile() if name == "local" else ENDPOINTS[name]
