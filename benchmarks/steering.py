"""Steering overhead (issue 17): Loom's Colmena task server vs Colmena's own ``LocalTaskServer``.

Run:  python benchmarks/steering.py [--tasks N] [--slots P] [--rounds R]
Prints the table and writes results/benchmarks/steering.{md,json}.

Colmena's queues carry one fix of Loom's (``CountedQueues``): without it a fast server's result
can arrive before the task is counted, and the campaign hangs.

The same campaign everywhere: the ``random`` policy's Thinker sends ``--tasks`` no-op evaluations
(Ackley, zero runtime), ``--slots`` at a time, and every task's Colmena timestamps give reaction
(compute ended -> result received by the Thinker), dispatch (request created -> compute started)
p50/p99 in ms and tasks/s. Servers: Colmena's ``LocalTaskServer`` (a child process with a thread
pool, ``PipeQueues``) and Loom's ``ExecutorTaskServer`` on the thread, process and Dask
executors (``LockedPipeQueues``), then Loom's thread server over Redis (``redis-server`` started
here) and over the event fabric (embedded broker). Each server first runs 2 x slots untimed
warm-up tasks (worker processes start on first use). Servers alternate within each round; a
figure is the median over rounds; ratios are to Colmena's server.
"""

from __future__ import annotations

import argparse
import faulthandler
import multiprocessing
import statistics
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any

from colmena.queue.python import PipeQueues
from colmena.task_server.local import LocalTaskServer
from tables import publish  # benchmarks/ is the script's folder

from components.executor.dask import DaskExecutorConfig
from components.executor.process import ProcessExecutor
from components.executor.thread import ThreadExecutor
from components.scenarios.steered_campaign import _record
from components.steering.ackley import evaluate
from components.steering.metrics import campaign_metrics
from components.steering.protocol import CampaignSettings
from components.steering.queues import (
    CountedQueues,
    FabricQueues,
    LockedPipeQueues,
    redis_queues,
)
from components.steering.server import ExecutorTaskServer
from framework import registry

# Every steering option's Thinker, from the registry (as a run builds it).
POLICIES = {
    kind: registry.config_model("steering", kind)().build().thinker
    for kind in registry.options("steering")
}

CAMPAIGN_LIMIT_S = 600
Served = Callable[[int], AbstractContextManager[Any]]  # slots -> a context giving the queues


class CountedPipeQueues(CountedQueues, PipeQueues):
    """Colmena's ``PipeQueues`` with only the fix without which its no-op campaigns hang.

    Colmena counts a task as active after sending it; a result that comes back first is never
    uncounted and the Thinker waits for ever (``CountedQueues``). No lock: one sender here.
    """


@contextmanager
def colmena_local(slots: int) -> Iterator[Any]:
    """Colmena's own server: a child process with ``slots`` threads."""
    queues = CountedPipeQueues()
    server = LocalTaskServer(queues, [evaluate], threads=True, num_workers=slots)
    server.start()
    try:
        yield queues
    finally:
        queues.send_kill_signal()
        server.join(30)


@contextmanager
def loom_server(queues: Any, executor: Any) -> Iterator[Any]:
    """Loom's server on ``executor`` (closed after) over ``queues``."""
    with executor:
        server = ExecutorTaskServer(queues, [evaluate], executor)
        server.serve()
        try:
            yield queues
        finally:
            queues.send_kill_signal()
            server.wait(30)


def servers(stack: ExitStack) -> dict[str, Served]:
    """The servers to compare (Redis and the fabric are started once, on ``stack``)."""
    from components.events.embedded import EmbeddedEventsConfig
    from components.storage.redis_peer import redis_server

    redis = stack.enter_context(redis_server(256 * 2**20))
    port = int(redis.connection_pool.connection_kwargs["port"])
    fabric = stack.enter_context(EmbeddedEventsConfig().build())

    @contextmanager
    def over_fabric(slots: int) -> Iterator[Any]:
        queues = FabricQueues(fabric.session("loom"), [])
        try:
            with loom_server(queues, ThreadExecutor(slots)) as opened:
                yield opened
        finally:
            queues.close()

    return {
        "colmena LocalTaskServer (pipes)": colmena_local,
        "loom thread (pipes)": lambda p: loom_server(LockedPipeQueues(), ThreadExecutor(p)),
        "loom process (pipes)": lambda p: loom_server(
            LockedPipeQueues(), ProcessExecutor(p, "forkserver")
        ),
        "loom dask (pipes)": lambda p: loom_server(
            LockedPipeQueues(), DaskExecutorConfig(n_workers=p).build()
        ),
        "loom thread (redis)": lambda p: loom_server(
            redis_queues("127.0.0.1", port), ThreadExecutor(p)
        ),
        "loom thread (fabric)": over_fabric,
    }


def campaign(served: Served, tasks: int, slots: int, seed: int) -> dict[str, float]:
    """One no-op campaign on a server; its latency figures and throughput."""
    faulthandler.dump_traceback_later(CAMPAIGN_LIMIT_S, exit=True)  # a stuck campaign: stacks
    with served(slots) as queues:
        for _ in range(2 * slots):  # warm-up, untimed: worker processes start on first use
            queues.send_inputs([0.0] * 4, 0.0, method="evaluate")
        for _ in range(2 * slots):
            queues.get_result(timeout=120)
        settings = CampaignSettings(tasks, slots, 4, [0.0] * tasks, seed)
        thinker = POLICIES["random"](queues, settings)
        thinker.run()  # in this thread: the figures exclude thread start-up
    faulthandler.cancel_dump_traceback_later()
    records = [_record(r) for r in thinker.results]
    assert len(records) == tasks and all(r["success"] for r in records)
    figures = campaign_metrics(records, slots, thinker.decisions_s, epsilon=1.0)
    span = max(r["result_received"] for r in records) - min(r["created"] for r in records)
    figures["tasks_per_s"] = tasks / span
    return figures


# Issue 40's goals: (reaction p99 ratio at most, tasks/s ratio at least) per kind of server.
GOALS = {"dask": (2.0, 0.5), "fabric": (1.5, 0.5)}


def _goal(name: str, m: dict[str, float], peer: dict[str, float]) -> dict[str, str]:
    """The goal a server's row is held to, and whether this run met it."""
    kind = next((k for k in GOALS if k in name), None)
    if kind is None:
        return {"goal (p99 ratio, tasks/s ratio)": "—", "met": "—"}
    most, least = GOALS[kind]
    met = (
        m["reaction_p99_ms"] / peer["reaction_p99_ms"] <= most
        and m["tasks_per_s"] / peer["tasks_per_s"] >= least
    )
    return {
        "goal (p99 ratio, tasks/s ratio)": f"≤ {most:g}, ≥ {least:g}",
        "met": "yes" if met else "no",
    }


def main() -> None:
    """Run every server ``--rounds`` times, alternating; print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=400, help="no-op tasks per campaign")
    parser.add_argument("--slots", type=int, default=2, help="tasks in flight at once")
    parser.add_argument("--rounds", type=int, default=3, help="campaigns per server")
    args = parser.parse_args()
    # Colmena's server is a child process, started after Redis' and the broker's threads: a
    # forked child can inherit a lock one of them held and hang. The forkserver starts clean.
    multiprocessing.set_start_method("forkserver")
    keys = (
        "reaction_p50_ms",
        "reaction_p99_ms",
        "dispatch_p50_ms",
        "dispatch_p99_ms",
        "tasks_per_s",
    )
    with ExitStack() as stack:
        chosen = servers(stack)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in chosen}
        for round_ in range(args.rounds):
            for name, served in chosen.items():
                runs[name].append(campaign(served, args.tasks, args.slots, round_))
                print(f"round {round_ + 1}/{args.rounds}: {name} done", flush=True)
    median = {n: {k: statistics.median(r[k] for r in rs) for k in keys} for n, rs in runs.items()}
    peer = median["colmena LocalTaskServer (pipes)"]
    rows: list[dict[str, object]] = []
    for name, m in median.items():
        rows.append(
            {
                "server (queues)": name,
                **{k: f"{m[k]:.2f}" if k.endswith("ms") else f"{m[k]:.0f}" for k in keys},
                "reaction p99 ratio": f"{m['reaction_p99_ms'] / peer['reaction_p99_ms']:.2f}",
                "tasks/s ratio": f"{m['tasks_per_s'] / peer['tasks_per_s']:.2f}",
                **_goal(name, m, peer),
            }
        )
    title = f"No-op steering, {args.tasks} tasks, {args.slots} slots, median of {args.rounds}"
    publish("steering", {title: rows})


if __name__ == "__main__":
    main()
