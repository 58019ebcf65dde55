"""Data flow: by value vs ProxyStore connectors, on Dask and the process pool, in one run.

Run:  python benchmarks/dataflow.py [--sizes 10000,1000000,10000000,100000000] [--tasks 8,32]
Writes results/benchmarks/dataflow.{md,json}.

Workload per cell: ``tasks`` map tasks, each given its own payload of ``size`` bytes and
returning one of the same size, then one reduce task reading every map output and returning a
digest (checked against one computed here). Payload kinds: numpy arrays (Dask moves them
without copies), bytes, and an opaque Python object (Dask pickles it whole).

Methods:
- ``loom by_value``: Loom's task path; results come back to the client and go out again in the
  reduce's arguments (how the path passes values on every executor);
- ``loom proxystore/<connector>``: the same path with ``dataflow=proxystore``; the fabric
  connector is built from storage groups as a run builds it (isal (4, 6), four linked
  containers);
- ``dask futures`` (Dask only): plain ``Client.submit`` with futures as arguments, so outputs go
  worker to worker (Dask at its best);
- ``ps-ex plugin`` (Dask only): proxystore-ex's ``Client(ps_store=…, ps_threshold=…)``, the
  same futures, on the file connector.

The Dask scheduler and workers run as separate processes (``dask scheduler``/``dask worker``),
so the scheduler's own peak memory and the bytes it read from its sockets
(``ss -tinp`` ``bytes_received``) are measured apart from the client's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import psutil
from tables import publish  # benchmarks/ is the script's folder

from components.coding.isal import IsalConfig
from components.dataflow.by_value import ByValueConfig
from components.dataflow.proxystore_flow import ProxyStoreConfig
from components.dataflow.workload import (
    checksum,
    checksum_resolved,
    make_payload,
    transform,
    transform_resolved,
)
from components.executor.dask import DaskExecutorConfig
from components.executor.process import ProcessExecutorConfig
from components.loopback import free_port
from components.placement.utility_factor import UtilityFactorConfig
from components.runtime.taskpath import TaskPath
from components.storage.container import LinkSpec
from components.storage.local import LocalStorageConfig

KINDS = ("numpy", "bytes", "object")
MAX_CELL_BYTES = 800 * 2**20  # inputs of one cell: fewer tasks for the largest payloads


class Peak:
    """Peak RSS of some processes, sampled every 20 ms, above their RSS at the start."""

    def __init__(self, pids: list[int]) -> None:
        self.procs = [psutil.Process(p) for p in pids]
        self.base = [p.memory_info().rss for p in self.procs]
        self.peak = list(self.base)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            for i, proc in enumerate(self.procs):
                with contextlib.suppress(psutil.Error):
                    self.peak[i] = max(self.peak[i], proc.memory_info().rss)

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def mb(self, i: int) -> float:
        return round((self.peak[i] - self.base[i]) / 2**20, 1)


@contextlib.contextmanager
def dask_cluster(workers: int) -> Iterator[tuple[str, int]]:
    """A scheduler and workers as processes of their own; yields (address, scheduler pid)."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    cli = [sys.executable, "-m"]
    scheduler = subprocess.Popen(
        [
            *cli,
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-dashboard",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = subprocess.Popen(
        [
            *cli,
            "distributed.cli.dask_worker",
            address,
            "--nworkers",
            str(workers),
            "--nthreads",
            "1",
            "--no-dashboard",
            "--memory-limit",
            "0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield address, scheduler.pid
    finally:
        for proc in (worker, scheduler):
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(20)


def _received(pid: int | None) -> int:
    """Bytes the process's TCP sockets received (``ss -tinp``: socket reads are not in rchar)."""
    if pid is None:
        return 0
    out = subprocess.run(["ss", "-tinpH"], capture_output=True, text=True, check=False).stdout
    total, mine = 0, False
    for line in out.splitlines():
        if not line.startswith((" ", "\t")):
            mine = f"pid={pid}," in line
        elif mine:
            for field in line.split():
                if field.startswith("bytes_received:"):
                    total += int(field.split(":", 1)[1])
    return total


def loom_cell(pool: Any, flow: Any, payloads: list[Any]) -> str:
    """Map + reduce through Loom's task path; the reduce's digest."""
    with TaskPath(pool, mover=flow.mover()) as path:
        maps = [path.submit(transform, p, name="map") for p in payloads]
        reduce = path.submit(checksum, *maps, name="reduce")
        path.wait()
        if not reduce.success:
            raise RuntimeError(f"reduce failed: {reduce.error or [t.error for t in maps]}")
        return str(reduce.value)


def futures_cell(client: Any, payloads: list[Any], resolving: bool = False) -> str:
    """Map + reduce with Dask futures passed as arguments (worker to worker).

    ``resolving``: the task functions resolve proxies first. The plugin hands tasks raw
    proxies, which ``np.frombuffer`` and ``hashlib`` reject (proxystore#109); without this
    its cells fail with ``TypeError``.
    """
    mapper, reducer = (
        (transform_resolved, checksum_resolved) if resolving else (transform, checksum)
    )
    maps = [client.submit(mapper, p, pure=False) for p in payloads]
    return str(client.submit(reducer, *maps, pure=False).result())


def measure(
    run: Callable[[], str],
    expected: str,
    pids: list[int],
    scheduler: int | None,
) -> dict[str, object]:
    before = _received(scheduler)
    with Peak(pids) as peak:
        start = time.perf_counter()
        digest = run()
        seconds = time.perf_counter() - start
    return {
        "makespan s": round(seconds, 3),
        "client peak MB": peak.mb(0),
        "scheduler peak MB": peak.mb(1) if scheduler else "-",
        "bytes received by scheduler MB": round((_received(scheduler) - before) / 2**20, 1)
        if scheduler
        else "-",
        "verified": digest == expected,
    }


# The fabric connector is the run's storage fabric; this one: isal (4, 6) over four local
# containers behind 1 GB/s, 0.2 ms links. Six chunks on four containers: two of them hold two
# chunks of each stripe (storage.share_containers), so a stripe survives any one lost container.
FABRIC_RUN = {
    "storage": LocalStorageConfig(
        containers=4,
        link=LinkSpec(bandwidth_mb_s=1000.0, latency_ms=0.2),
        share_containers=True,
    ),
    "coding": IsalConfig(k=4, m=6),
    "placement": UtilityFactorConfig(),
}
FABRIC_LABEL = "loom proxystore/fabric isal(4,6) x4 linked"


def flow_configs(executor: str) -> list[tuple[str, Any]]:
    connectors = ["file", "redis"] + (["zmq"] if executor == "process" else [])
    fabric = ProxyStoreConfig(connector="fabric", threshold_bytes=100_000).joined(FABRIC_RUN)
    return [
        ("loom by_value", ByValueConfig()),
        *[
            (f"loom proxystore/{c}", ProxyStoreConfig(connector=c, threshold_bytes=100_000))
            for c in connectors
        ],
        (FABRIC_LABEL, fabric),
    ]


def run_all(sizes: list[int], task_counts: list[int], repeats: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    me = os.getpid()
    for executor in ("dask", "process"):
        with contextlib.ExitStack() as stack:
            scheduler: int | None = None
            address = ""
            if executor == "dask":
                address, scheduler = stack.enter_context(dask_cluster(2))
                pool = stack.enter_context(DaskExecutorConfig(address=address).build())
            else:
                pool = stack.enter_context(ProcessExecutorConfig(max_workers=2).build())
            # Flows (and their servers) open once, outside the timed cells.
            flows = [(name, stack.enter_context(c.build())) for name, c in flow_configs(executor)]
            pids = [me] + ([scheduler] if scheduler else [])
            for _, flow in flows:  # warm the workers and each store's first use
                loom_cell(pool, flow, [make_payload("bytes", 200_000, 0)])
            cells = [(k, z, t) for k in KINDS for z in sizes for t in task_counts]
            for kind, size, tasks in cells:
                count = max(1, min(tasks, MAX_CELL_BYTES // size))
                if count < tasks and tasks != min(task_counts):
                    continue  # capped to the count of a smaller setting: a repeat of it
                payloads = [make_payload(kind, size, seed) for seed in range(count)]
                expected = checksum(*[transform(p) for p in payloads])
                cell = {"executor": executor, "kind": kind, "size": _size(size), "tasks": count}
                methods: list[tuple[str, Callable[[], str]]] = [
                    (name, partial(loom_cell, pool, flow, payloads)) for name, flow in flows
                ]
                if executor == "dask":
                    methods.append(("dask futures", partial(futures_cell, pool.client, payloads)))
                    methods.append(("ps-ex plugin", partial(_plugin, address, payloads)))
                rows += _cells(cell, methods, expected, pids, scheduler, repeats)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return [{k: r.get(k, "") for k in keys} for r in rows]


def _cells(
    cell: dict[str, object],
    methods: list[tuple[str, Callable[[], str]]],
    expected: str,
    pids: list[int],
    scheduler: int | None,
    repeats: int,
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    base: float | None = None
    for name, run in methods:
        try:
            runs = [measure(run, expected, pids, scheduler) for _ in range(repeats)]
            result = dict(runs[-1])
            result["makespan s"] = statistics.median(float(r["makespan s"]) for r in runs)
            result["verified"] = all(r["verified"] for r in runs)
        except Exception as exc:  # one failing cell does not end the table
            result = {"makespan s": "-", "error": f"{type(exc).__name__}: {str(exc)[:80]}"}
        seconds = result.get("makespan s")
        if name == "loom by_value" and isinstance(seconds, float):
            base = seconds
        ratio = round(seconds / base, 2) if base and isinstance(seconds, float) else "-"
        rows.append({**cell, "method": name, **result, "makespan / loom by_value": ratio})
        print(rows[-1], flush=True)
    return rows


def _plugin(address: str, payloads: list[Any]) -> str:
    import warnings

    from proxystore.store import Store

    warnings.filterwarnings("ignore", module="proxystore")
    from proxystore.ex.plugins.distributed import Client

    with _file() as connector:
        store = Store(f"ps-ex-{time.time_ns()}", connector, register=True)
        client = Client(address, ps_store=store, ps_threshold=100_000)
        try:
            return futures_cell(client, payloads, resolving=True)
        finally:
            client.close()
            store.close()


@contextlib.contextmanager
def _file() -> Iterator[Any]:
    handle = ProxyStoreConfig().connector_config().open()
    try:
        yield handle.connector
    finally:
        handle.close()


def _size(n: int) -> str:
    for unit, scale in (("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} B"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="10000,1000000,10000000,100000000",
        help="payload sizes in bytes, comma-separated",
    )
    parser.add_argument("--tasks", default="8", help="map tasks per cell, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell (median)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = run_all(sizes, [int(t) for t in args.tasks.split(",")], args.repeats)
    title = "map + reduce, by value vs ProxyStore (2 workers; median of repeats; ratio to by_value)"
    publish("dataflow", {title: rows})


if __name__ == "__main__":
    main()
