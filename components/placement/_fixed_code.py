"""The state-of-the-art baselines' shared rule: a fixed (N, K) on the fastest nodes.

As in the reference's HDFS-RS, GlusterFS and DAOS code: take the N fastest writers; replace
any without room for a chunk by the first other node with room; then, while the target is
missed, swap the least reliable chosen node for the most reliable spare node with room, at
most (live nodes − N + 1) times.
"""

from __future__ import annotations

from components.placement.cluster import Cluster
from components.placement.protocol import CannotPlace
from components.placement.reliability import meets
from components.placement.scheduling import Decision, no_space


class TargetMissed(CannotPlace):
    """The swaps ran out before the target was met (DAOS then raises its redundancy)."""


def fixed_code(cluster: Cluster, size_mb: float, target: float, n: int, k: int) -> Decision:
    """Place with a fixed (n, k) on the fastest nodes, repaired for space and reliability.

    Raises:
        CannotPlace: fewer than ``n`` nodes with room.
        TargetMissed: the target is still missed after the allowed swaps.

    """
    order = cluster.by_write_bandwidth()
    if n > len(order):
        raise CannotPlace(f"no space: ({n},{k}) needs {n} live nodes, {len(order)} are up")
    chunk = size_mb / k
    free, p_fail = cluster.free, cluster.p_fail
    chosen = list(range(n))  # positions in `order`
    for slot in range(n):
        if free[order[chosen[slot]]] < chunk:
            room = (p for p in range(len(order)) if p not in chosen and free[order[p]] >= chunk)
            spare = next(room, None)
            if spare is None:
                raise no_space(size_mb, f" as ({n},{k}): too few nodes with {chunk:g} MB free")
            chosen[slot] = spare
    reliabilities = [float(p_fail[order[pos]]) for pos in chosen]
    swaps = 0
    while not meets(reliabilities, k, target):
        if swaps > len(order) - n:
            raise TargetMissed(f"target unreachable: ({n},{k}) misses reliability {target}")
        worst = max(range(n), key=lambda s: (reliabilities[s], -s))  # first of the largest
        spares = [
            pos for pos in range(len(order)) if pos not in chosen and free[order[pos]] >= chunk
        ]
        if not spares:
            raise TargetMissed(
                f"target unreachable: ({n},{k}) misses reliability {target} and no spare "
                "node has room"
            )
        best = min(spares, key=lambda pos: (p_fail[order[pos]], pos))
        chosen[worst] = best
        reliabilities[worst] = float(p_fail[order[best]])
        swaps += 1
    return Decision(n, k, tuple(order[pos] for pos in chosen))
