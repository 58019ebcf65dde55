"""The trace-driven placement simulator (D-Rex's ``alg4`` main loop, in Python).

Items arrive in order; a scheduler places each one on the cluster or refuses it. Optional
node failures take nodes down between items; every item with a piece on a failed node is
placed again as a new item (its surviving pieces are released), or counted lost when fewer
than K pieces survive.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from components.placement.cluster import Cluster
from components.placement.costs import CLIENT_BANDWIDTH_MB_S, CodingTimes, coding_seconds
from components.placement.protocol import CannotPlace
from components.placement.reliability import meets
from components.placement.scheduling import Decision, Scheduler, SchedulingContext
from components.scenarios.placement_workload import ItemWorkload


class FailurePlan:
    """When nodes fail: asked before each item which nodes are down from then on."""

    def due(self, item: int, submit_s: int, cluster: Cluster) -> list[int]:
        """Node indices that fail before item ``item`` (submitted at ``submit_s``)."""
        del item, submit_s, cluster
        return []


@dataclass
class ItemRecords:
    """Per-item outcome columns (one row per placement attempt, re-placements included).

    ``write_s`` and ``read_s`` are the parallel transfers the throughput counts (the client's
    link or the slowest piece); ``write_total_s`` and ``read_total_s`` add every piece's
    transfer, and ``write_slowest_s`` is the slowest piece alone: the reference's per-item
    columns, summed in the order of the chosen nodes as it sums them.
    """

    item: list[int] = field(default_factory=list)
    size_mb: list[float] = field(default_factory=list)
    n: list[int] = field(default_factory=list)
    k: list[int] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    write_s: list[float] = field(default_factory=list)
    read_s: list[float] = field(default_factory=list)
    write_total_s: list[float] = field(default_factory=list)
    write_slowest_s: list[float] = field(default_factory=list)
    read_total_s: list[float] = field(default_factory=list)
    encode_s: list[float] = field(default_factory=list)
    decode_s: list[float] = field(default_factory=list)
    schedule_us: list[float] = field(default_factory=list)
    outcome: list[str] = field(default_factory=list)


@dataclass
class SimulationResult:
    """Totals of one replay."""

    items_submitted: int = 0
    items_stored: int = 0
    items_rejected: int = 0
    data_stored_mb: float = 0.0
    storage_used_mb: float = 0.0
    write_seconds: float = 0.0
    read_seconds: float = 0.0
    scheduling_seconds: float = 0.0
    nodes_failed: int = 0
    items_replaced: int = 0
    items_lost: int = 0
    items_below_target: int = 0
    rejections: Counter[str] = field(default_factory=Counter)
    storage_curve: list[tuple[int, float]] = field(default_factory=list)
    records: ItemRecords = field(default_factory=ItemRecords)

    def metrics(self) -> dict[str, float]:
        """The scenario's metrics."""
        stored = self.data_stored_mb
        return {
            "items_submitted": self.items_submitted,
            "items_stored": self.items_stored,
            "items_rejected": self.items_rejected,
            "data_stored_mb": stored,
            "storage_used_mb": self.storage_used_mb,
            "storage_efficiency": stored / self.storage_used_mb if self.storage_used_mb else 0.0,
            "write_throughput_mb_s": stored / self.write_seconds if self.write_seconds else 0.0,
            "read_throughput_mb_s": stored / self.read_seconds if self.read_seconds else 0.0,
            "scheduling_time_per_item_ms": 1000
            * self.scheduling_seconds
            / max(1, self.items_submitted + self.items_replaced),
            "nodes_failed": self.nodes_failed,
            "items_replaced": self.items_replaced,
            "items_lost": self.items_lost,
            "items_below_target": self.items_below_target,
        }


@dataclass
class _Stored:
    size_mb: float
    decision: Decision
    alive: int


class Simulator:
    """Replays a workload onto a cluster with one scheduler.

    Args:
        cluster: The node set (mutated as items are placed).
        scheduler: The placement rule.
        context: Limits and cost model for the scheduler.
        coding_times: Encode/decode planes for the modelled times.
        failures: When nodes fail (None: never).
        keep_records: Keep one record per item (the artifact).

    """

    def __init__(
        self,
        cluster: Cluster,
        scheduler: Scheduler,
        context: SchedulingContext,
        coding_times: CodingTimes,
        failures: FailurePlan | None = None,
        *,
        keep_records: bool = True,
    ) -> None:
        self.cluster = cluster
        self.scheduler = scheduler
        self.context = context
        self.coding_times = coding_times
        self.failures = failures
        self.keep_records = keep_records
        self.result = SimulationResult()
        # Which stored items have a piece on each node (only tracked with failures).
        self._on_node: dict[int, set[int]] = defaultdict(set)
        self._stored: dict[int, _Stored] = {}

    def run(
        self, workload: ItemWorkload, progress: Callable[[int], None] | None = None
    ) -> SimulationResult:
        """Place every item; return the totals."""
        result = self.result
        sizes, submits, targets = workload.sizes_mb, workload.submit_s, workload.targets
        curve_every = max(1, len(workload) // 500)
        for item in range(len(workload)):
            size = float(sizes[item])
            if self.failures is not None:
                for node in self.failures.due(item, int(submits[item]), self.cluster):
                    self._fail(node, float(targets[item]))
            self.cluster.min_item_mb = min(self.cluster.min_item_mb, size)
            result.items_submitted += 1
            self._place(item, size, float(targets[item]), "stored")
            if item % curve_every == 0:
                result.storage_curve.append((item, result.storage_used_mb))
                if progress is not None:
                    progress(item)
        result.storage_curve.append((len(workload), result.storage_used_mb))
        return result

    def _place(self, item: int, size: float, target: float, outcome: str) -> bool:
        result, cluster = self.result, self.cluster
        self.context.nearest.update(size)
        start = time.perf_counter()
        try:
            decision: Decision | None = self.scheduler.schedule(cluster, size, target, self.context)
            reason = ""
        except CannotPlace as exc:
            decision, reason = None, str(exc).split(":", 1)[0]
        elapsed = time.perf_counter() - start
        result.scheduling_seconds += elapsed
        if decision is None:
            if outcome == "stored":
                result.items_rejected += 1
            result.rejections[reason] += 1
            self._record(item, size, None, 0.0, 0.0, 0.0, 0.0, elapsed, f"rejected ({reason})")
            return False
        nodes = decision.nodes
        n, k = decision.n, decision.k
        free, write_bw, read_bw = cluster.free, cluster.write_bw, cluster.read_bw
        link = size / CLIENT_BANDWIDTH_MB_S
        # Plain floats: this runs a million times per replay. The reference charges N·(S/K),
        # and 3·S for replication however the copies split.
        if decision.amounts is None:
            chunk = size / k
            for node in nodes:
                free[node] -= chunk
            stored = chunk * n
            write = max(link, chunk / min(write_bw[i] for i in nodes))
            read = max(link, chunk / min(read_bw[i] for i in nodes))
        else:
            for node, amount in zip(nodes, decision.amounts, strict=True):
                free[node] -= amount
            stored = sum(decision.amounts)
            write = max(
                link, *(a / write_bw[i] for i, a in zip(nodes, decision.amounts, strict=True))
            )
            read = max(
                link, *(a / read_bw[i] for i, a in zip(nodes, decision.amounts, strict=True))
            )
        encode, decode = self._coding_seconds(size, n, k)
        if not meets(cluster.p_fail[list(nodes)], k, target):
            result.items_below_target += 1  # placers that do not choose (n, k) ignore targets
        if outcome == "stored":
            result.items_stored += 1
            result.data_stored_mb += size
        else:
            result.items_replaced += 1
        result.storage_used_mb += stored
        # Like the reference's totals, an infinite coding time (priced at size 0) is not added.
        result.write_seconds += write + (encode if math.isfinite(encode) else 0.0)
        result.read_seconds += read + (decode if math.isfinite(decode) else 0.0)
        if self.failures is not None:
            self._stored[item] = _Stored(size, decision, len(nodes))
            for node in nodes:
                self._on_node[node].add(item)
        self._record(item, size, decision, write, read, encode, decode, elapsed, outcome)
        return True

    def _coding_seconds(self, size: float, n: int, k: int) -> tuple[float, float]:
        """Encode and decode seconds of one item (plain floats: the fast path)."""
        nearest, times = self.context.nearest, self.coding_times
        index, reference = nearest.index, nearest.size_mb
        if reference == 0:  # before the first item that moves the reference size
            return (
                float(coding_seconds(times.encode[index], n, k, reference, size)),
                float(coding_seconds(times.decode[index], n, k, reference, size)),
            )
        scale = size / reference / 1000.0
        return times.encode[index].ms_at(n, k) * scale, times.decode[index].ms_at(n, k) * scale

    def _fail(self, node: int, target: float) -> None:
        """Take ``node`` down; place its items again (or count them lost)."""
        cluster, result = self.cluster, self.result
        if not cluster.up[node]:
            return
        cluster.up[node] = False
        result.nodes_failed += 1
        for item in sorted(self._on_node.pop(node, set())):
            stored = self._stored.pop(item)
            stored.alive -= 1
            written = stored.decision.written(stored.size_mb)
            pieces = list(zip(stored.decision.nodes, written, strict=True))
            for other, amount in pieces:
                if other != node:
                    self._on_node[other].discard(item)
                    if cluster.up[other]:
                        cluster.free[other] += amount
            result.storage_used_mb -= sum(a for _, a in pieces)
            readable = stored.alive >= stored.decision.k
            if not readable or not self._place(item, stored.size_mb, target, "replaced"):
                result.items_lost += 1
                result.items_stored -= 1
                result.data_stored_mb -= stored.size_mb

    def _record(
        self,
        item: int,
        size: float,
        decision: Decision | None,
        write: float,
        read: float,
        encode: float,
        decode: float,
        elapsed: float,
        outcome: str,
    ) -> None:
        if not self.keep_records:
            return
        r = self.result.records
        r.item.append(item)
        r.size_mb.append(size)
        r.n.append(decision.n if decision else 0)
        r.k.append(decision.k if decision else 0)
        r.nodes.append(
            " ".join(str(int(self.cluster.ids[i])) for i in decision.nodes) if decision else ""
        )
        r.write_s.append(write)
        r.read_s.append(read)
        write_total = write_slowest = read_total = 0.0
        if decision is not None:
            write_bw, read_bw = self.cluster.write_bw, self.cluster.read_bw
            for node, amount in zip(decision.nodes, decision.written(size).tolist(), strict=True):
                write_total += amount / write_bw[node]
                write_slowest = max(write_slowest, amount / write_bw[node])
                read_total += amount / read_bw[node]
        r.write_total_s.append(float(write_total))
        r.write_slowest_s.append(float(write_slowest))
        r.read_total_s.append(float(read_total))
        r.encode_s.append(encode)
        r.decode_s.append(decode)
        r.schedule_us.append(elapsed * 1e6)
        r.outcome.append(outcome)
