"""``scenario=federated``: train a model federated over the ``fl`` group's tree, on the executor.

One trial: build the data and split it (validating the worker count), warm every executor
worker (start-up, timed apart), run the rounds (sync) or the trainings (async), and record per
round the leader's test accuracy and loss, the round time (dispatch → aggregated model at the
leader) and the participants; per run the bytes on every tree edge each way and per tier, the
bytes and messages into the leader, the workers' idle fraction, peak memory, makespan and
start-up. Plots: accuracy per round, bytes per tier, and the task timeline.
"""

from __future__ import annotations

import pickle
import resource
import time
from typing import Any, ClassVar, Literal

from components.base import RunContext, Scenario, ScenarioConfig
from components.runtime.trial import TASK_PATH_FAULTS, TaskTrial


class FederatedConfig(ScenarioConfig):
    """Federated training over the ``fl`` group's topology, strategy and mode."""

    kind: Literal["federated"] = "federated"
    requires: ClassVar[tuple[str, ...]] = ("executor", "dataflow", "fl")
    fault_kinds: ClassVar[frozenset[str]] = TASK_PATH_FAULTS
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "final_accuracy",
        "round_s_mean",
        "bytes_total",
        "root_messages_in",
        "idle_fraction",
        "startup_s",
    )

    def build(self) -> Scenario:
        """Create the scenario."""
        return Federated()


class Federated:
    """One trial of federated training."""

    def run(self, ctx: RunContext) -> None:
        """Train, evaluate every round, record."""
        import torch  # here: listing and validating configs should not import it

        from components.fl import jobs
        from components.fl.data import load
        from components.fl.federation import Federation
        from components.fl.protocol import FederatedLearning
        from components.fl.strategies import Update
        from components.fl.topology import reduction_percent
        from components.fl.training import evaluate, initial_params

        fl = ctx.component("fl", FederatedLearning)  # type: ignore[type-abstract]
        began = time.perf_counter()
        data = load(fl.dataset, ctx.seed, fl.samples)
        plan = fl.plan(ctx.seed, data.features, data.classes)
        jobs.federation_data(plan.data)  # the split, here first: a bad worker count fails now
        net = jobs.model_of(plan.model)
        start = Update(initial_params(net, ctx.seed), 0)
        model_bytes = len(pickle.dumps(start, protocol=5))
        x_test, y_test = torch.as_tensor(data.x_test), torch.as_tensor(data.y_test)

        def test(update: Update) -> tuple[float, float]:
            return evaluate(net, update.state, x_test, y_test)

        # Under a by-reference data flow every model update travels by reference, whatever
        # its size: a small model would stay under the threshold and nothing would move.
        trial = TaskTrial(ctx, by_reference=(f"{Update.__module__}.{Update.__qualname__}",))
        with trial as path:
            primes = [
                path.submit(jobs.prime, plan.data, plan.model, name="prime")
                for _ in range(max(1, trial.executor.workers))
            ]
            path.wait()
            failed = [p.error for p in primes if not p.success]
            if failed:
                raise RuntimeError(f"a worker could not load the federation: {failed[0]}")
            startup = time.perf_counter() - began
            federation = Federation(plan, path, test)
            dispatched = time.perf_counter()
            description = f"trial {ctx.trial}: {fl.mode} federated"
            with ctx.progress.bar(description, federation.work_units(fl.mode)) as bar:
                federation.on_progress = bar.update
                if fl.mode == "sync":
                    final = federation.run_sync(start, model_bytes)
                else:
                    final = federation.run_async(start, model_bytes)
            makespan = time.perf_counter() - dispatched
            idle = federation.idle_fraction()
        accuracy, loss = test(final)
        history = federation.history
        assert federation.edges is not None
        totals = federation.edges.totals(fl.topology)
        rounds_s = [h["round_s"] for h in history]
        ctx.write_records("rounds", history)
        ctx.write_records(
            "edges",
            [
                {
                    "parent": p,
                    "child": c,
                    "down": federation.edges.down.get((p, c), 0),
                    "up": federation.edges.up.get((p, c), 0),
                    "model_bytes": model_bytes,
                }
                for p, c in fl.topology.edges
            ],
        )
        title = (
            f"{fl.mode} {fl.strategy}, {len(fl.topology.workers)} workers, "
            f"height {fl.topology.height}"
        )
        _plot(history, totals, ctx, title)
        _plot_nodes(federation, ctx, f"{title}, idle {idle:.0%}")
        trial.record(
            {
                "final_accuracy": accuracy,
                "final_loss": loss,
                "rounds_run": float(len(history)),
                "round_s_mean": sum(rounds_s) / len(rounds_s) if rounds_s else 0.0,
                "round_s_max": max(rounds_s, default=0.0),
                "makespan_s": makespan,
                "startup_s": startup,
                "model_bytes": float(model_bytes),
                "bytes_total": totals["bytes_down"] + totals["bytes_up"],
                **totals,
                "models_per_round": (totals["bytes_down"] + totals["bytes_up"])
                / model_bytes
                / max(1, len(history)),
                # Flight's notebook model of the >60 % (one round, full participation), beside it.
                "analytic_reduction_percent": reduction_percent(fl.topology),
                "idle_fraction": idle,
                "workers": float(len(fl.topology.workers)),
                "height": float(fl.topology.height),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "children_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
                / 1024,
            },
            plot_title=f"federated trial {ctx.trial}",
        )


def _plot(
    history: list[dict[str, float]], totals: dict[str, float], ctx: RunContext, title: str
) -> None:
    """Accuracy per round and bytes per tier."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    left.plot([h["round"] for h in history], [h["accuracy"] for h in history], marker=".")
    left.set_xlabel("round (async: a round's worth of folds at the leader)")
    left.set_ylabel("test accuracy")
    left.set_ylim(0, 1)
    tiers: dict[str, Any] = {k: v for k, v in totals.items() if k.startswith("bytes_tier_")}
    right.bar([k.removeprefix("bytes_tier_") for k in tiers], [v / 1e6 for v in tiers.values()])
    right.set_xlabel("tier (edges into depth)")
    right.set_ylabel("MB, both ways")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(ctx.run_dir / f"federated-trial-{ctx.trial:03d}.png", dpi=120)
    plt.close(fig)


def _plot_nodes(federation: Any, ctx: RunContext, title: str, most: int = 40) -> None:
    """Each tree node's tasks over time: the leader and aggregators on top, then workers.

    Beyond ``most`` rows, workers are sampled evenly (their order is the tree's).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spans = federation.spans()
    if not spans:
        return
    topo = federation.topology
    inner = [n for n in topo.walk() if n not in federation.index and n in spans]
    workers = [w for w in topo.workers if w in spans]
    room = max(1, most - len(inner))
    step = max(1, -(-len(workers) // room))
    rows = inner[:most] + workers[::step]
    origin = min(s for intervals in spans.values() for s, _, _ in intervals)
    colours = {"train": "tab:blue", "aggregate": "tab:orange", "fold": "tab:green"}
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.22 * len(rows) + 1.5)))
    for i, node in enumerate(rows):
        for kind, colour in colours.items():
            bars = [(s - origin, e - s) for s, e, k in spans[node] if k == kind]
            if bars:
                ax.broken_barh(bars, (i - 0.4, 0.8), color=colour, label=kind)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(list(unique.values()), list(unique), loc="upper right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the first task")
    shown = "" if step == 1 else f" (every {step}th worker)"
    ax.set_title(f"{title}: tasks per tree node{shown}", fontsize=9)
    fig.tight_layout()
    fig.savefig(ctx.run_dir / f"fl-nodes-trial-{ctx.trial:03d}.png", dpi=110)
    plt.close(fig)
