"""``scenario=steered_campaign``: a Colmena campaign, steered by the ``steering`` policy.

One trial minimises an objective with ``evaluations`` tasks, ``slots`` at a time, on the
``executor`` group's executor through Loom's Colmena task server, and records every task's
Colmena timestamps, the best value against evaluations and utilisation over time. Objectives:
``ackley`` (Colmena's optimizer campaign, 4-D Ackley with timed evaluations) and ``digits``
(each task trains and scores a real MLP on scikit-learn's digits). Each trial draws its points
(and Ackley's times) from ``seed × 1000 + trial``, so ``repeats`` gives the spread over seeds.

Requests and results travel over ``queues``: in-process pipes, Redis (a ``redis-server``
started for the run unless ``redis_host`` is set) or the ``events`` fabric (Kafka topics).
With ``dataflow=proxystore``, task arguments and results of ``threshold_bytes`` or more go
by reference, through Colmena's own ProxyStore support, on the dataflow group's store. With
``listen_topic``, events that any producer writes to that fabric topic steer the campaign
(see ``Campaign.listen``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, model_validator

from components.base import RunContext, Scenario, ScenarioConfig
from components.error_info import ErrorInfo

FABRIC_PRINCIPAL = "loom"  # the default topology's principal: queues and listener use its namespace


class SteeredCampaignConfig(ScenarioConfig):
    """A steered search: the steering policy chooses each next evaluation."""

    kind: Literal["steered_campaign"] = "steered_campaign"
    requires: ClassVar[tuple[str, ...]] = ("executor", "steering", "dataflow")
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "best_value",
        "evaluations_to_epsilon",
        "time_to_epsilon_s",
        "utilisation",
        "reaction_p99_ms",
        "makespan_s",
    )
    campaign: Literal["ackley", "digits"] = Field(
        "ackley", description="the objective: ackley (timed), digits (trains an MLP per task)"
    )
    evaluations: int = Field(100, ge=2, le=1_000_000, description="evaluations in all")
    dim: int = Field(4, ge=1, le=100, description="dimensions of the search space")
    runtime_median_s: float = Field(1.0, ge=0, le=3600, description="median evaluation time")
    runtime_sigma: float = Field(0.5, ge=0, le=5, description="log-normal spread of the times")
    epsilon: float = Field(
        8.0, gt=0, description="solved once the best is within this of the optimum (0)"
    )
    max_retries: int = Field(0, ge=0, le=100, description="retries of a failed evaluation")
    crash_every: int = Field(
        0, ge=0, le=1_000_000, description="every k-th evaluation crashes (0: none)"
    )
    crash_attempts: int = Field(1, ge=1, le=100, description="attempts of it that crash")
    timeout_s: float = Field(3600.0, gt=0, description="the campaign fails past this")
    queues: Literal["pipes", "redis", "fabric"] = Field(
        "pipes", description="how requests and results travel: pipes, redis, fabric (events)"
    )
    redis_host: str | None = Field(
        None, description="queues=redis: server host (default: start redis-server for the run)"
    )
    redis_port: int = Field(6379, ge=1, le=65535, description="queues=redis: with redis_host")
    listen_topic: str | None = Field(
        None,
        description="a fabric topic whose events steer the campaign ({event: stop} ends it; "
        "{event: retrain} retrains, reallocation)",
    )

    @model_validator(mode="after")
    def _digits_box(self) -> Self:
        if self.campaign == "digits" and self.dim != 4:
            raise ValueError(f"dim={self.dim}: the digits campaign searches 4 hyper-parameters")
        return self

    def needs(self) -> tuple[str, ...]:
        """The event fabric too when the queues or the listener use it."""
        fabric = self.queues == "fabric" or self.listen_topic is not None
        return (*self.requires, "events") if fabric else self.requires

    def build(self) -> Scenario:
        """Create the scenario."""
        return SteeredCampaign(self)


class SteeredCampaign:
    """One trial: serve, steer, measure."""

    def __init__(self, config: SteeredCampaignConfig) -> None:
        self.config = config

    def run(self, ctx: RunContext) -> None:
        """Run the campaign; log its metrics, write its task records and plot."""
        import numpy as np

        from components.runtime.protocols import LoomExecutor
        from components.steering.ackley import BOUND, evaluate, runtimes
        from components.steering.digits import BOUND as DIGITS_BOUND
        from components.steering.digits import load, train_digits
        from components.steering.metrics import campaign_metrics
        from components.steering.protocol import CampaignSettings, SteeringPolicy
        from components.steering.server import ExecutorTaskServer
        from components.steering.surrogate import rank

        cfg = self.config
        executor = ctx.component("executor", LoomExecutor)  # type: ignore[type-abstract]
        policy = ctx.component("steering", SteeringPolicy)  # type: ignore[type-abstract]
        seed = ctx.seed * 1000 + ctx.trial
        method: Callable[..., float]
        if cfg.campaign == "digits":
            method, bound, kwargs, times = train_digits, DIGITS_BOUND, {"data": load(seed)}, []
        else:
            method, bound, kwargs = evaluate, BOUND, {}
            times = runtimes(cfg.evaluations, cfg.runtime_median_s, cfg.runtime_sigma, seed)
        rank([[0.0] * cfg.dim, [1.0] * cfg.dim], [0.0, 1.0], np.zeros((1, cfg.dim)), 0)  # imports
        with ExitStack() as stack:
            queues = open_queues(cfg, ctx, stack)
            outside = None
            if cfg.listen_topic is not None:
                outside = _fabric(ctx).consumer(
                    [cfg.listen_topic], group=f"steer-{seed}", value_format="json"
                )
                outside.wait_assigned(1)
                stack.callback(outside.close)
            settings = CampaignSettings(
                cfg.evaluations,
                policy.slots,
                cfg.dim,
                times,
                seed,
                cfg.max_retries,
                cfg.crash_every,
                cfg.crash_attempts,
                policy.options,
                method.__name__,
                bound,
                kwargs,
                outside,
            )
            server = ExecutorTaskServer(queues, [method, rank], executor)
            server.serve()
            thinker = policy.thinker(queues, settings)
            with ctx.progress.bar(f"{policy.name}: evaluations", cfg.evaluations) as bar:
                # A campaign that times out (its broker dead) may leave agents waiting on
                # results that never come: they must not keep the process alive.
                thinker.daemon = True
                thinker.start()
                deadline = time.monotonic() + cfg.timeout_s
                while thinker.is_alive() and time.monotonic() < deadline:
                    thinker.join(0.2)
                    bar.update(len(thinker.results))
            timed_out = thinker.is_alive()
            abandoned = 0
            if timed_out:
                thinker.done.set()
                abandoned = queues.abandon_outstanding()
                thinker.join(2)
            queues.send_kill_signal()
            # Past the timeout the server may never hear the signal (a dead broker): the
            # campaign ends within its timeout plus a few seconds, whatever holds it.
            server.wait(2 if timed_out else 30)
        if thinker.agent_errors:  # the cause, not the empty record it leaves behind
            raise RuntimeError(f"the campaign stopped: {thinker.agent_errors[0]}")
        if timed_out:
            raise TimeoutError(
                f"scenario.timeout_s={cfg.timeout_s}: the campaign did not finish "
                f"({len(thinker.results)} of {cfg.evaluations} evaluations back, {abandoned} "
                "tasks abandoned without a result)"
            )
        tasks = [_record(r) for r in thinker.results]
        metrics = campaign_metrics(tasks, policy.slots, thinker.decisions_s, cfg.epsilon)
        metrics["retrains"] = float(thinker.retrains)
        metrics["outside_events"] = float(thinker.outside_events)
        flow: Any = ctx.components.get("dataflow")
        if hasattr(flow, "store"):
            keys, _ = flow.stored()
            metrics["store_keys_leaked"] = float(keys)
            metrics.update(flow.store_metrics())
        ctx.log_metrics({k: v for k, v in metrics.items() if not math.isnan(v)})
        ctx.write_records("tasks", tasks)
        _plot(tasks, policy.slots, ctx, policy.name, cfg.epsilon)


def _fabric(ctx: RunContext) -> Any:
    """The ``loom`` principal's session on the run's event fabric."""
    from components.events.protocol import EventFabric

    fabric = ctx.component("events", EventFabric)  # type: ignore[type-abstract]
    return fabric.login(fabric.token_of(FABRIC_PRINCIPAL))


def open_queues(cfg: SteeredCampaignConfig, ctx: RunContext, stack: ExitStack) -> Any:
    """The campaign's Colmena queues (closed, and their server stopped, with ``stack``).

    With ``dataflow=proxystore`` they proxy values of ``threshold_bytes`` or more through the
    data flow's registered store (Colmena's ``proxystore_name`` and ``proxystore_threshold``).
    """
    from components.steering.queues import FabricQueues, LockedPipeQueues, redis_queues

    flow: Any = ctx.components.get("dataflow")
    options: dict[str, Any] = {}
    if hasattr(flow, "store"):
        options = {
            "proxystore_name": flow.store.name,
            "proxystore_threshold": int(flow.config.threshold_bytes),
        }
    if cfg.queues == "pipes":
        return LockedPipeQueues(topics=["ml"], **options)
    if cfg.queues == "fabric":  # messages over the broker's limit go through the flow's store
        overflow = flow.store.connector if hasattr(flow, "store") else None
        queues = FabricQueues(_fabric(ctx), ["ml"], overflow=overflow, **options)
        stack.callback(queues.close)
        return queues
    host, port = cfg.redis_host, cfg.redis_port
    if host is None:
        from components.storage.redis_peer import redis_server

        client = stack.enter_context(redis_server(512 * 2**20))
        host, port = "127.0.0.1", int(client.connection_pool.connection_kwargs["port"])
    import redis

    try:
        return redis_queues(host, port, ["ml"], **options)
    except redis.RedisError as exc:
        raise ConnectionError(
            f"scenario.redis_host={host}: cannot reach Redis at {host}:{port} ({exc}); start "
            "one, or leave redis_host unset to have Loom start redis-server for the run"
        ) from None


def _record(result: Any) -> dict[str, Any]:
    """A task's record: its timestamps, outcome, attempts and error."""
    stamps = result.timestamp.model_dump()
    failure = result.failure_info
    return {
        "index": (result.task_info or {}).get("index"),
        "method": result.method,
        "x": (result.task_info or {}).get("x"),
        "value": float(result.value) if result.success else None,
        "success": bool(result.success),
        "retries": int(result.retries),
        "error": None if failure is None else _error_info(failure).to_dict(),
        "running_s": result.time.running,
        "worker": result.worker_info.hostname if result.worker_info else None,
        **{k: stamps[k] for k in stamps},
    }


def _error_info(failure: Any) -> ErrorInfo:
    """Colmena's failure (``repr`` of the exception and its traceback) as Loom's ErrorInfo."""
    text = str(failure.exception)
    name, _, rest = text.partition("(")
    if name.isidentifier() and rest.endswith(")"):
        return ErrorInfo(name, rest[:-1].strip("'\""), failure.traceback or "")
    return ErrorInfo("Exception", text, failure.traceback or "")


def _plot(
    tasks: list[dict[str, Any]], slots: int, ctx: RunContext, policy: str, epsilon: float
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from components.steering.metrics import utilisation_series

    values = [t["value"] if t["success"] else np.inf for t in tasks]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(range(1, len(values) + 1), np.minimum.accumulate(values), drawstyle="steps-post")
    left.axhline(epsilon, color="gray", linestyle="--", label=f"epsilon {epsilon:g}")
    left.set_xlabel("evaluations completed")
    left.set_ylabel("best value found")
    left.set_title(f"{policy}: best value")
    left.legend(fontsize=8)
    times, busy = utilisation_series(tasks, slots)
    right.plot(times, busy)
    right.set_ylim(0, 1.05)
    right.set_xlabel("time (s)")
    right.set_ylabel("tasks computing / slots")
    right.set_title("utilisation over time")
    fig.tight_layout()
    fig.savefig(ctx.run_dir / f"steering-trial-{ctx.trial:03d}.png", dpi=110)
    plt.close(fig)
    (ctx.run_dir / "best.json").write_text(json.dumps({"best": float(min(values))}))
