"""``scenario=futures_chain``: ProxyStore's task pipelining through futures.

The pipelining benchmark of the proxy-patterns paper (TPDS'24, ``psbench task_pipelining``):
a chain of tasks, each needing its predecessor's data only for
the last ``1 − overhead_fraction`` of its run. ``mode=sequential`` passes each result to the
next task by the task graph (a task starts when its parent ended); ``mode=pipelined`` submits
every task at once with a future of its input and a future for its output, so a task does its
input-free part while its predecessor still runs. A failing task (``fail_at``) fails its
output future, and the tasks after it fail at once with its error instead of timing out.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from components.base import ComponentConfig, RunContext, Scenario, ScenarioConfig
from components.dataflow.futures import DataFuture, resolve
from components.dataflow.wake import EventsWake, Wake, events_wake
from components.runtime.trial import TASK_PATH_FAULTS, TaskTrial


def derive(data: bytes, index: int, size: int) -> bytes:
    """The output of chain task ``index``: ``size`` bytes that depend on all of ``data``."""
    block = hashlib.blake2b(data, digest_size=64, salt=index.to_bytes(8, "little")[:16]).digest()
    return (block * (size // len(block) + 1))[:size]


def chain_task(
    index: int,
    task_s: float,
    overhead_fraction: float,
    size: int,
    source: Any,
    output: DataFuture | None,
    fail: bool,
) -> bytes | int:
    """One link: input-free work, then the input (waiting for it if a future), then the rest.

    With an output future the result goes there (the task returns its size); a failure is
    stored in the future before it propagates, so the next link fails at once.
    """
    try:
        time.sleep(task_s * overhead_fraction)
        data = resolve(source)
        time.sleep(task_s * (1 - overhead_fraction))
        if fail:
            raise RuntimeError(f"chain task {index} failed (fail_at={index})")
        out = derive(bytes(data), index, size)
    except BaseException as exc:
        if output is not None:
            output.set_exception(exc)
        raise
    if output is None:
        return out
    output.set_result(out)
    return len(out)


class FuturesChainConfig(ScenarioConfig):
    """A chain of tasks, sequential or pipelined through ProxyStore futures."""

    kind: Literal["futures_chain"] = "futures_chain"
    requires: ClassVar[tuple[str, ...]] = ("executor", "dataflow")
    fault_kinds: ClassVar[frozenset[str]] = TASK_PATH_FAULTS
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "makespan_s",
        "result_verified",
        "tasks_failed",
        "store_keys_leaked",
    )

    mode: Literal["sequential", "pipelined"] = Field("pipelined", description="how links meet")
    tasks: int = Field(8, ge=1, le=10_000, description="links of the chain")
    task_s: float = Field(1.0, ge=0, le=3600, description="each link's run time (s)")
    overhead_fraction: float = Field(
        0.5, ge=0, le=1, description="part of each link that does not need its input"
    )
    data_bytes: int = Field(10_000_000, ge=1, le=2**30, description="bytes each link passes on")
    fail_at: int | None = Field(None, ge=0, description="index of a link that fails")
    timeout_s: float = Field(120.0, gt=0, le=86_400, description="a link waits this long")
    wake: Literal["auto", "events", "poll"] = Field(
        "auto",
        description="how a waiting link is woken: auto (Redis pub/sub on the redis connector, "
        "else polling), events (a topic of the event fabric), poll",
    )

    def needs(self) -> tuple[str, ...]:
        """The event fabric too when links are woken through it."""
        return (*self.requires, "events") if self.wake == "events" else self.requires

    def check_components(self, groups: Mapping[str, ComponentConfig]) -> list[str]:
        """A pipelined chain needs futures: a store that can reserve a key."""
        flow = groups["dataflow"]
        if self.mode == "pipelined" and (
            flow.kind != "proxystore" or getattr(flow, "connector", None) == "zmq"
        ):
            chosen = f"dataflow={flow.kind}" + (
                f" with dataflow.connector={flow.connector}" if hasattr(flow, "connector") else ""
            )
            return [
                f"scenario.mode=pipelined needs futures, which {chosen} cannot give: choose "
                "dataflow=proxystore (connector file, redis or fabric), or scenario.mode=sequential"
            ]
        return []

    def build(self) -> Scenario:
        """Create the scenario."""
        return FuturesChain(self)


class FuturesChain:
    """One trial: run the chain, check the last link's output against a local run."""

    def __init__(self, config: FuturesChainConfig) -> None:
        self.config = config
        self._events_wake: EventsWake | None = None

    def run(self, ctx: RunContext) -> None:
        """Submit the chain in the configured mode and record it."""
        cfg = self.config
        payload = derive(ctx.seed.to_bytes(8, "little"), -1 % 2**31, cfg.data_bytes)
        flow: Any = ctx.components.get("dataflow")
        if cfg.mode == "pipelined" and not hasattr(flow, "future"):
            raise ValueError(
                "scenario.mode=pipelined needs futures: run it with dataflow=proxystore "
                "(connector file, redis or fabric)"
            )
        trial = TaskTrial(ctx)
        futures: list[DataFuture] = []
        with trial as path, ctx.progress.bar(f"trial {ctx.trial}: chain", cfg.tasks):
            args = (cfg.task_s, cfg.overhead_fraction, cfg.data_bytes)
            if cfg.mode == "sequential":
                source: Any = payload
                for i in range(cfg.tasks):
                    source = path.submit(
                        chain_task, i, *args, source, None, i == cfg.fail_at, name="link"
                    )
                path.wait()
                last = source.value if source.success else None
            else:
                wake = self._wake(ctx)
                futures = [flow.future(bytes, cfg.timeout_s, wake) for _ in range(cfg.tasks)]
                for i in range(cfg.tasks):
                    given = payload if i == 0 else futures[i - 1].proxy()
                    path.submit(
                        chain_task, i, *args, given, futures[i], i == cfg.fail_at, name="link"
                    )
                path.wait()
                last = futures[-1].result(1.0) if path.tasks[-1].success else None
            expected = payload
            for i in range(cfg.tasks):
                expected = derive(expected, i, cfg.data_bytes)
            verified = last is not None and bytes(last) == expected
            for future in futures:  # the futures' keys are this scenario's to free
                flow.store.evict(future.key)
        first_failure = next((t.done for t in path.tasks if not t.success), None)
        last_done = max(t.done for t in path.tasks)
        trial.record(
            {
                "result_verified": float(verified),
                # How long the chain ran on after the first failure: short when links fail fast.
                "failure_spread_s": (last_done - first_failure) if first_failure else 0.0,
            }
        )

    def _wake(self, ctx: RunContext) -> Wake | Literal["auto"] | None:
        """The configured wake channel (one topic for the job's trials); None: polling."""
        if self.config.wake != "events":
            return None if self.config.wake == "poll" else "auto"
        if self._events_wake is None:
            from components.events.fabric import KafkaEventFabric

            fabric = ctx.component("events", KafkaEventFabric)
            session = fabric.session(fabric.config.principals[0])
            self._events_wake = events_wake(session, f"wake-{time.time_ns() % 10**12}")
        return self._events_wake


# Kafka's default largest message (message.max.bytes) less room for the event's metadata.
