"""Running a federation on a task path: synchronous rounds and asynchronous folding, any depth.

**Sync.** Each round the selected workers train (grouped per parent, ``clients_per_task`` to a
task), and every aggregator with a selected descendant is one task that depends on its
children's tasks, bottom-up to the leader (Flight's sync-v2, as one task graph). The round ends
when the leader's aggregate is done.

**Async** (Flight: two tiers only; here any depth). Every worker trains on its parent's
current model and, when done, is folded into it at once (a task that depends on the training
task and on the parent's previous fold, so folds at one node are serial), and starts again from
the folded model. An aggregator forwards its model upward after every ``forward_every`` folds
(default: its number of children) and takes its parent's folded model as its own. Staleness is
the number of versions the receiving node moved on since the sender's base.

The coordinator only moves task handles; model states go worker to worker through the task
path (by value or as proxies). Bytes are counted per tree edge as the deployment would send
them: one model down and one up per edge used.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from components.fl import jobs
from components.fl.strategies import FedAsync, Strategy, Update
from components.fl.topology import Topology
from components.fl.training import LocalTraining
from components.runtime.taskpath import TaskHandle, TaskPath

Evaluate = Callable[[Update], tuple[float, float]]


@dataclass
class EdgeBytes:
    """Bytes and messages per tree edge, each way."""

    model_bytes: int
    down: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    up: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))

    def send_down(self, parent: str, child: str) -> None:
        """One model from ``parent`` to ``child``."""
        self.down[parent, child] += 1

    def send_up(self, parent: str, child: str) -> None:
        """One model from ``child`` to ``parent``."""
        self.up[parent, child] += 1

    def totals(self, topology: Topology) -> dict[str, float]:
        """Bytes down, up, at the root, and per tier (tier d: edges into depth d)."""
        out = {
            "bytes_down": float(sum(self.down.values()) * self.model_bytes),
            "bytes_up": float(sum(self.up.values()) * self.model_bytes),
            "root_messages_in": float(
                sum(n for (p, _), n in self.up.items() if p == topology.root)
            ),
        }
        out["root_bytes_in"] = out["root_messages_in"] * self.model_bytes
        for (_, child), n in itertools.chain(self.down.items(), self.up.items()):
            key = f"bytes_tier_{topology.depth[child]}"
            out[key] = out.get(key, 0.0) + n * self.model_bytes
        return out


@dataclass(frozen=True)
class Plan:
    """Everything a federation run needs, fixed before it starts."""

    topology: Topology
    strategy: Strategy
    rounds: int
    participation: float | tuple[float, ...]  # one share of all workers, or one per tier
    selection: Literal["fixed", "probabilistic"]
    local: LocalTraining
    data: jobs.DataSpec
    model: jobs.ModelSpec
    clients_per_task: int
    slowdowns: dict[str, float]
    seed: int
    forward_every: int | None = None


class Federation:
    """One federated training run over a task path."""

    def __init__(self, plan: Plan, path: TaskPath, evaluate: Evaluate) -> None:
        self.plan = plan
        self.path = path
        self.evaluate = evaluate
        self.topology = plan.topology
        self.index = {w: i for i, w in enumerate(self.topology.workers)}
        self.history: list[dict[str, float]] = []
        self.role: dict[int, tuple[str, tuple[str, ...]]] = {}  # task id → (kind, workers)
        self.edges: EdgeBytes | None = None
        # Told the units of work done so far (rounds in sync mode, trainings in async mode).
        self.on_progress: Callable[[int], None] = lambda done: None
        # Sync: who trains in a round (default: :meth:`select`), and what each round did: its
        # history entry and each trained worker's share of its training tasks' CPU seconds.
        self.choose: Callable[[int], list[str]] | None = None
        self.on_round: Callable[[dict[str, float], dict[str, float]], None] = lambda h, t: None
        # Sync: seconds from the round's start until each aggregator's model was ready.
        self.aggregated_s: dict[str, float] = {}

    def work_units(self, mode: str) -> int:
        """The units :attr:`on_progress` counts to: rounds (sync) or trainings (async)."""
        return self.plan.rounds * (1 if mode == "sync" else len(self.topology.workers))

    # -- shared ----------------------------------------------------------------------------

    def _seeds(self, workers: list[str], round_: int) -> tuple[int, ...]:
        return tuple(hash_seed(self.plan.seed, round_, self.index[w]) for w in workers)

    def _site(self, node: str) -> str | None:
        """The pool a node's tasks run in: its ``site`` where the executor has one per site."""
        if not self.path.sites:
            return None
        return str(self.topology.nodes[node].attrs["site"])

    def _train(self, start: Any, workers: list[str], round_: int) -> TaskHandle:
        plan = self.plan
        slowdown = max(plan.slowdowns.get(w, 1.0) for w in workers)
        handle = self.path.submit(
            jobs.train_clients,
            plan.data,
            plan.model,
            start,
            tuple(self.index[w] for w in workers),
            plan.local,
            self._seeds(workers, round_),
            slowdown,
            name="train",
            site=self._site(workers[0]),  # a task's workers share their parent
        )
        self.role[handle.task_id] = ("train", tuple(workers))
        return handle

    def select(self, round_: int) -> list[str]:
        """The workers of one round.

        A single share picks among all workers: a fixed count, or each with that probability.
        One share per tier walks down from the leader: every selected node picks that share
        of its children (a fixed count, at least one, or each with that probability), and
        the workers picked this way under selected aggregators train.
        """
        workers = self.topology.workers
        rng = random.Random(hash_seed(self.plan.seed, round_, -1))
        shares = self.plan.participation
        if isinstance(shares, tuple):
            return self._select_by_tier(shares, rng)
        if shares >= 1:
            return list(workers)
        chosen = set(self._pick(workers, shares, rng))
        return [w for w in workers if w in chosen]

    def _pick(self, nodes: list[str], share: float, rng: random.Random) -> list[str]:
        if share >= 1:
            return list(nodes)
        if self.plan.selection == "fixed":
            return rng.sample(nodes, max(1, int(share * len(nodes))))
        chosen = [n for n in nodes if rng.random() < share]
        return chosen or [rng.choice(nodes)]

    def _select_by_tier(self, shares: tuple[float, ...], rng: random.Random) -> list[str]:
        topo = self.topology
        frontier, picked = [topo.root], set()
        while frontier:
            node = frontier.pop()
            children = topo.nodes[node].children
            if not children:
                picked.add(node)
                continue
            frontier += self._pick(list(children), shares[topo.depth[node]], rng)
        return [w for w in topo.workers if w in picked]

    # -- sync ------------------------------------------------------------------------------

    def run_sync(self, start: Update, model_bytes: int) -> Update:
        """``rounds`` synchronous rounds from ``start``; the final global model."""
        topo, plan = self.topology, self.plan
        self.edges = EdgeBytes(model_bytes)
        current = start
        for round_ in range(plan.rounds):
            began = time.time()
            selected = self.choose(round_) if self.choose is not None else self.select(round_)
            used = {(topo.parent[n], n) for w in selected for n in [w, *topo.ancestors(w)][:-1]}
            for parent, child in used:
                self.edges.send_down(parent, child)
                self.edges.send_up(parent, child)
            feeds: dict[str, list[TaskHandle]] = defaultdict(list)
            by_parent: dict[str, list[str]] = defaultdict(list)
            for w in selected:
                by_parent[topo.parent[w]].append(w)
            first_task = len(self.path.tasks)
            for parent, leaves in by_parent.items():
                for i in range(0, len(leaves), plan.clients_per_task):
                    chunk = leaves[i : i + plan.clients_per_task]
                    feeds[parent].append(self._train(current, chunk, round_))
            active = {p for p, _ in used}
            root: TaskHandle | None = None
            for node in sorted(active, key=lambda n: -topo.depth[n]):
                handle = self.path.submit(
                    jobs.aggregate,
                    plan.strategy,
                    *feeds[node],
                    name="aggregate",
                    site=self._site(node),
                )
                self.role[handle.task_id] = ("aggregate", (node,))
                if node == topo.root:
                    root = handle
                else:
                    feeds[topo.parent[node]].append(handle)
            assert root is not None
            self.path.wait()
            if not root.success:
                raise RuntimeError(f"round {round_}: aggregation failed: {root.error}")
            current = _value(root.value)
            trained = self._training_seconds(self.path.tasks[first_task:])
            self.aggregated_s = {
                self.role[t.task_id][1][0]: t.done - began
                for t in self.path.tasks[first_task:]
                if self.role.get(t.task_id, ("",))[0] == "aggregate"
            }
            # The round's models are read: the path need not keep them (memory stays flat).
            self.path.drop(self.path.tasks[first_task:])
            accuracy, loss = self.evaluate(current)
            self.history.append(
                {
                    "round": float(round_),
                    "accuracy": accuracy,
                    "loss": loss,
                    "round_s": root.done - began,
                    "participants": float(len(selected)),
                    "time_s": root.done,
                }
            )
            self.on_round(self.history[-1], trained)
            self.on_progress(round_ + 1)
        return current

    def _training_seconds(self, tasks: list[TaskHandle]) -> dict[str, float]:
        """Each worker's share of the CPU seconds of its successful training tasks."""
        seconds: dict[str, float] = defaultdict(float)
        for task in tasks:
            kind, workers = self.role.get(task.task_id, ("", ()))
            if kind == "train" and task.success and workers:
                for worker in workers:
                    seconds[worker] += task.cpu_s / len(workers)
        return dict(seconds)

    # -- async -----------------------------------------------------------------------------

    def run_async(self, start: Update, model_bytes: int) -> Update:
        """``rounds`` × workers trainings, each folded in as it arrives; the final model.

        A worker starts again as soon as its model is folded, so fast workers do more of the
        trainings than slow ones (the point of asynchrony); the total is a sync run's.
        """
        topo, plan = self.topology, self.plan
        if not isinstance(plan.strategy, FedAsync):
            raise ValueError("mode=async needs strategy=fedasync")
        strategy = plan.strategy
        self.edges = edges = EdgeBytes(model_bytes)
        current: dict[str, Any] = {n: start for n in topo.nodes if n not in topo.workers}
        version = dict.fromkeys(current, 0)
        base: dict[str, int] = {}  # a worker's (or aggregator's) parent version at its start
        done_rounds = dict.fromkeys(topo.workers, 0)
        folds = dict.fromkeys(current, 0)
        every = {n: plan.forward_every or len(topo.nodes[n].children) for n in current}
        evaluate_every = len(topo.nodes[topo.root].children)
        began = time.time()
        pending: dict[int, str] = {}  # training task id → worker
        # As many trainings in all as ``rounds`` sync rounds would run; none waits for another.
        budget, started = len(topo.workers) * plan.rounds, 0

        def start_training(w: str) -> None:
            nonlocal started
            started += 1
            parent = topo.parent[w]
            base[w] = version[parent]
            edges.send_down(parent, w)
            handle = self._train(current[parent], [w], done_rounds[w])
            pending[handle.task_id] = w

        def fold_into(node: str, arrived: Any, staleness: int) -> TaskHandle:
            handle = self.path.submit(
                jobs.fold,
                strategy,
                current[node],
                arrived,
                staleness,
                name="fold",
                site=self._site(node),
            )
            self.role[handle.task_id] = ("fold", (node,))
            current[node] = handle
            version[node] += 1
            folds[node] += 1
            if node == topo.root and folds[node] % evaluate_every == 0:
                evaluations[handle.task_id] = folds[node] // evaluate_every - 1
            return handle

        def forward(node: str) -> None:
            parent = topo.parent[node]
            edges.send_up(parent, node)
            fold_into(parent, current[node], version[parent] - base.get(node, 0))
            edges.send_down(parent, node)  # the aggregator takes its parent's folded model
            current[node] = current[parent]
            base[node] = version[parent]
            if parent != topo.root and folds[parent] % every[parent] == 0:
                forward(parent)

        evaluations: dict[int, int] = {}  # root fold task id → evaluation number
        for w in topo.workers:
            start_training(w)
        outstanding = budget
        while outstanding or evaluations:
            handle = self.path.next_finished(timeout=60)
            if handle is None:
                raise TimeoutError("no task finished for 60 s in an asynchronous federation")
            if not handle.success:
                raise RuntimeError(f"task {handle.name} {handle.task_id} failed: {handle.error}")
            w = pending.pop(handle.task_id, "")
            if w:
                outstanding -= 1
                self.on_progress(budget - outstanding)
                parent = topo.parent[w]
                edges.send_up(parent, w)
                fold_into(parent, handle, version[parent] - base[w])
                done_rounds[w] += 1
                if parent != topo.root and folds[parent] % every[parent] == 0:
                    forward(parent)
                if started < budget:  # whoever is free trains next: fast workers train more
                    start_training(w)
            number = evaluations.pop(handle.task_id, None)
            if number is not None:
                accuracy, loss = self.evaluate(_value(handle.value))
                since = self.history[-1]["time_s"] if self.history else began
                self.history.append(
                    {
                        "round": float(number),
                        "accuracy": accuracy,
                        "loss": loss,
                        "round_s": handle.done - since,
                        "participants": float(evaluate_every),
                        "time_s": handle.done,
                    }
                )
        for node in topo.nodes[topo.root].children:  # what the aggregators hold goes up last
            if node not in topo.workers and base.get(node, -1) != version[topo.root]:
                forward(node)
        self.path.wait()
        final = current[topo.root]
        return _value(final.value) if isinstance(final, TaskHandle) else final

    # -- after -----------------------------------------------------------------------------

    def spans(self) -> dict[str, list[tuple[float, float, str]]]:
        """Per tree node, its successful tasks as (start, end, kind), Unix seconds.

        A worker's are its trainings (a task of many vmapped devices counts for each of
        them); an aggregator's and the leader's are their aggregations or folds.
        """
        out: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
        for task in self.path.tasks:
            kind, nodes = self.role.get(task.task_id, ("", ()))
            if kind and task.success:
                for node in nodes:
                    out[node].append((task.start, task.end, kind))
        return out

    def idle_fraction(self) -> float:
        """Mean over workers of 1 − time training / (last end − first start)."""
        fractions = []
        for node, intervals in self.spans().items():
            if node not in self.index:
                continue
            total = max(e for _, e, _ in intervals) - min(s for s, _, _ in intervals)
            busy = sum(e - s for s, e, _ in intervals)
            fractions.append(1 - busy / total if total > 0 else 0.0)
        return sum(fractions) / len(fractions) if fractions else 0.0


def hash_seed(seed: int, round_: int, worker: int) -> int:
    """A seed per (run, round, worker), the same on every process."""
    import hashlib

    digest = hashlib.blake2b(f"{seed}:{round_}:{worker}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % 2**31


def _value(value: Any) -> Update:
    """A task's result as an Update (a proxy is resolved here, on the leader)."""
    if type(value) is Update:  # by value: no need to import ProxyStore (and pandas: +75 MB)
        return value
    from components.dataflow.futures import resolve

    out = resolve(value)
    if not isinstance(out, Update):
        raise TypeError(f"expected an Update, got {type(out).__name__}")
    return out
