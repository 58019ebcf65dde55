"""CPU seconds of a run: this process and every process it started.

Executor workers, Dask workers, the event broker and servers are descendants of the engine's
process. Live descendants are read with psutil; those that exited and were waited for show
up in ``os.times()``'s children counts (a grandchild's time reaches us through its parent).
A process that was already running when the measurement started is charged only what it
used after the start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil


def _cpu(times: psutil._common.pcputimes) -> float:
    return float(times.user + times.system)


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds at one moment."""

    own: float
    reaped: float
    live: dict[tuple[int, float], float]  # (pid, create time) → CPU seconds


def _kernel_children(pid: int) -> list[int] | None:
    """Children of ``pid`` from ``/proc/<pid>/task/*/children``; None where the kernel has none."""
    base = f"/proc/{pid}/task"
    try:
        threads = os.listdir(base)
    except OSError:
        return None
    kids: list[int] = []
    for tid in threads:
        try:
            with open(f"{base}/{tid}/children", "rb") as listing:
                kids += [int(k) for k in listing.read().split()]
        except FileNotFoundError:
            if tid == str(pid):
                return None  # a kernel without children lists
        except OSError:
            continue  # the thread just ended
    return kids


def _descendants(process: psutil.Process) -> list[psutil.Process]:
    """Every live descendant; from ``/proc/<pid>/task/*/children`` where the kernel has it.

    psutil's recursive ``children()`` reads every process's parent (1.3 ms with 64 processes
    here); the kernel's children lists give the tree in a few small reads, done with plain
    ``open`` as the meter's start and stop bracket every trial.
    """
    todo = _kernel_children(process.pid)
    if todo is None:
        return list(process.children(recursive=True))
    found: list[psutil.Process] = []
    while todo:
        kid = todo.pop()
        try:
            found.append(psutil.Process(kid))
        except psutil.NoSuchProcess:
            continue
        todo += _kernel_children(kid) or []
    return found


def _snapshot(process: psutil.Process) -> CpuSnapshot:
    times = os.times()  # this process and its reaped children in one call
    live: dict[tuple[int, float], float] = {}
    for child in _descendants(process):
        try:
            with child.oneshot():
                live[(child.pid, child.create_time())] = _cpu(child.cpu_times())
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return CpuSnapshot(times.user + times.system, times.children_user + times.children_system, live)


class ProcessTreeCpu:
    """Counts the CPU seconds of this process and its descendants from :meth:`start`."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._start = _snapshot(self._process)

    def start(self) -> None:
        """Start (again) from now."""
        self._start = _snapshot(self._process)

    def seconds(self) -> float:
        """CPU seconds used by the tree since :meth:`start`."""
        now = _snapshot(self._process)
        start = self._start
        used = now.own - start.own
        for key, seconds in now.live.items():
            used += seconds - start.live.get(key, 0.0)
        # Processes that exited since the start: their whole lifetime is in the reaped
        # count, so take off what they had used before the start.
        gone_before = sum(s for key, s in start.live.items() if key not in now.live)
        used += max(0.0, (now.reaped - start.reaped) - gone_before)
        return max(0.0, used)
