"""``scenario=steered_campaign``: Colmena's optimizer campaign, steered by the ``steering`` policy.

One trial minimises the 4-D Ackley function with ``evaluations`` timed evaluations, ``slots`` at
a time, on the ``executor`` group's executor through Loom's Colmena task server, and records
every task's Colmena timestamps, the best value against evaluations and utilisation over time.
Each trial draws its points and evaluation times from ``seed × 1000 + trial``, so ``repeats``
gives the spread over seeds.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any, ClassVar, Literal

from pydantic import Field

from components.base import RunContext, Scenario, ScenarioConfig


class SteeredCampaignConfig(ScenarioConfig):
    """A steered search: the steering policy chooses each next evaluation."""

    kind: Literal["steered_campaign"] = "steered_campaign"
    requires: ClassVar[tuple[str, ...]] = ("executor", "steering")
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "best_value",
        "evaluations_to_epsilon",
        "time_to_epsilon_s",
        "utilisation",
        "reaction_p99_ms",
        "makespan_s",
    )
    campaign: Literal["ackley"] = Field("ackley", description="the objective (ackley: 4-D)")
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

        from components.executors.base import LoomExecutor
        from components.steering.ackley import evaluate, runtimes
        from components.steering.config import SteeringPolicy
        from components.steering.metrics import campaign_metrics
        from components.steering.policies import CampaignSettings
        from components.steering.queues import LockedPipeQueues
        from components.steering.server import ExecutorTaskServer
        from components.steering.surrogate import rank

        cfg = self.config
        executor = ctx.component("executor", LoomExecutor)  # type: ignore[type-abstract]
        policy = ctx.component("steering", SteeringPolicy)
        seed = ctx.seed * 1000 + ctx.trial
        settings = CampaignSettings(
            cfg.evaluations, policy.slots, cfg.dim,
            runtimes(cfg.evaluations, cfg.runtime_median_s, cfg.runtime_sigma, seed), seed,
            cfg.max_retries, cfg.crash_every, cfg.crash_attempts, policy.options,
        )  # fmt: skip
        queues = LockedPipeQueues(topics=["ml"])
        rank([[0.0] * cfg.dim, [1.0] * cfg.dim], [0.0, 1.0], np.zeros((1, cfg.dim)), 0)  # imports
        server = ExecutorTaskServer(queues, [evaluate, rank], executor)
        server.serve()
        thinker = policy.thinker(queues, settings)
        with ctx.progress.bar(f"{policy.name}: evaluations", cfg.evaluations) as bar:
            thinker.start()
            deadline = time.monotonic() + cfg.timeout_s
            while thinker.is_alive() and time.monotonic() < deadline:
                thinker.join(0.2)
                bar.update(len(thinker.results))
        timed_out = thinker.is_alive()
        if timed_out:
            thinker.done.set()
            thinker.join(10)
        queues.send_kill_signal()
        server.wait(30)
        if timed_out:
            raise TimeoutError(f"scenario.timeout_s={cfg.timeout_s}: the campaign did not finish")
        tasks = [_record(r) for r in thinker.results]
        metrics = campaign_metrics(tasks, policy.slots, thinker.decisions_s, cfg.epsilon)
        metrics["retrains"] = float(thinker.retrains)
        ctx.log_metrics({k: v for k, v in metrics.items() if not math.isnan(v)})
        ctx.write_records("tasks", tasks)
        _plot(tasks, policy.slots, ctx, policy.name, cfg.epsilon)


def _record(result: Any) -> dict[str, Any]:
    """A task's record: its timestamps, outcome, attempts and error."""
    stamps = result.timestamp.model_dump()
    failure = result.failure_info
    return {
        "index": (result.task_info or {}).get("index"),
        "method": result.method,
        "x": list(result.args[0]) if result.args else None,
        "value": float(result.value) if result.success else None,
        "success": bool(result.success),
        "retries": int(result.retries),
        "error": None if failure is None else f"{failure.exception}",
        "running_s": result.time.running,
        "worker": result.worker_info.hostname if result.worker_info else None,
        **{k: stamps[k] for k in stamps},
    }


def _plot(tasks: list[dict[str, Any]], slots: int, ctx: RunContext, policy: str,
          epsilon: float) -> None:  # fmt: skip
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
