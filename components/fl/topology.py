"""Federated-learning topologies: a tree of one leader, aggregators and workers.

A topology comes from a file in Flight's node format (a mapping of node id to ``kind``,
``children`` and any extra attributes, YAML or JSON) or from a factory:

- :func:`two_tier` — a leader and ``n`` workers;
- :func:`balanced` — every inner node has ``branching`` children, leaves at depth ``height``;
- :func:`fixed_leaves` — Flight's ``balanced_tree_with_fixed_leaves``: ``r = round(leaves^(1/h))``;
- :func:`hierarchical` — Flight's ``create_hierarchical_topo``: tiers of aggregators of the
  given sizes, each node attached to a random node of the tier above (here every aggregator is
  guaranteed a child, which Flight's random choice is not).

Every tree is validated: one leader, one parent for every other node, no cycle, no worker with
children and no aggregator without; a violation raises :class:`TopologyError` naming the node.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import Field, model_validator

from components.base import LoomModel


class TopologyError(ValueError):
    """An invalid tree; the message names the node and what is wrong."""


class NodeKind(StrEnum):
    """The role of a node."""

    LEADER = "leader"
    AGGREGATOR = "aggregator"
    WORKER = "worker"


@dataclass(frozen=True)
class Node:
    """One node of the tree.

    Attributes:
        id: Its name.
        kind: Leader, aggregator or worker.
        children: Ids of its children, in order.
        attrs: Extra attributes from the file (endpoints, resources, a worker's speed).

    """

    id: str
    kind: NodeKind
    children: tuple[str, ...] = ()
    attrs: Mapping[str, Any] = field(default_factory=dict)


class Topology:
    """A validated tree.

    Args:
        nodes: Every node, by id.

    Raises:
        TopologyError: The nodes do not form a valid tree.

    """

    def __init__(self, nodes: Mapping[str, Node]) -> None:
        self.nodes = dict(nodes)
        self.parent: dict[str, str] = {}
        for node in self.nodes.values():
            for child in node.children:
                if child not in self.nodes:
                    raise TopologyError(f"node {node.id!r} lists child {child!r}, not a node")
                if child in self.parent:
                    raise TopologyError(
                        f"node {child!r} has two parents: {self.parent[child]!r} and {node.id!r}"
                    )
                self.parent[child] = node.id
        leaders = [n.id for n in self.nodes.values() if n.kind is NodeKind.LEADER]
        if len(leaders) != 1:
            raise TopologyError(
                f"a topology needs exactly one leader; found {len(leaders)}: {leaders}"
            )
        self.root = leaders[0]
        if self.root in self.parent:
            raise TopologyError(
                f"the leader {self.root!r} has a parent, {self.parent[self.root]!r}"
            )
        orphans = sorted(set(self.nodes) - set(self.parent) - {self.root})
        if orphans:
            raise TopologyError(f"nodes {orphans} have no parent (a second root)")
        self.depth = self._depths()
        for node in self.nodes.values():
            if node.kind is NodeKind.WORKER and node.children:
                raise TopologyError(f"worker {node.id!r} has children {list(node.children)}")
            if node.kind is not NodeKind.WORKER and not node.children:
                raise TopologyError(f"{node.kind} {node.id!r} has no children")

    def _depths(self) -> dict[str, int]:
        depth = {self.root: 0}
        stack = [self.root]
        while stack:
            current = stack.pop()
            for child in self.nodes[current].children:
                if child in depth:
                    raise TopologyError(f"node {child!r} is reached twice: a cycle")
                depth[child] = depth[current] + 1
                stack.append(child)
        unreached = sorted(set(self.nodes) - set(depth))
        if unreached:
            raise TopologyError(f"nodes {unreached} are not reachable from the leader: a cycle")
        return depth

    # -- reading ---------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, spec: Mapping[str, Mapping[str, Any]]) -> Topology:
        """Flight's node format: ``{id: {kind: …, children: [...], <attribute>: …}}``."""
        nodes = {}
        for raw_id, body in spec.items():
            node_id = str(raw_id)
            if not isinstance(body, Mapping):
                raise TopologyError(f"node {node_id!r}: expected a mapping, got {body!r}")
            try:
                kind = NodeKind(str(body.get("kind", "")).lower())
            except ValueError:
                raise TopologyError(
                    f"node {node_id!r}: kind={body.get('kind')!r}; allowed: "
                    "leader, aggregator, worker"
                ) from None
            children = body.get("children") or []
            if not isinstance(children, list):
                raise TopologyError(f"node {node_id!r}: children must be a list, got {children!r}")
            attrs = {k: v for k, v in body.items() if k not in ("kind", "children")}
            nodes[node_id] = Node(node_id, kind, tuple(str(c) for c in children), attrs)
        return cls(nodes)

    @classmethod
    def from_file(cls, path: str | Path) -> Topology:
        """A YAML or JSON file in Flight's node format."""
        import yaml

        file = Path(path)
        if not file.is_file():
            raise TopologyError(f"topology file {str(file)!r} does not exist")
        text = file.read_text(encoding="utf-8")
        try:
            spec = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise TopologyError(f"topology file {str(file)!r} does not parse: {exc}") from None
        if not isinstance(spec, Mapping):
            raise TopologyError(f"topology file {str(file)!r}: expected a mapping of nodes")
        return cls.from_dict(spec)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The tree in Flight's node format (what :meth:`from_dict` reads)."""
        return {
            n.id: {"kind": str(n.kind), "children": list(n.children), **dict(n.attrs)}
            for n in self.nodes.values()
        }

    # -- questions -------------------------------------------------------------------------

    @property
    def workers(self) -> list[str]:
        """Worker ids, in depth-first order."""
        return [i for i in self.walk() if self.nodes[i].kind is NodeKind.WORKER]

    @property
    def aggregators(self) -> list[str]:
        """Aggregator ids, in depth-first order."""
        return [i for i in self.walk() if self.nodes[i].kind is NodeKind.AGGREGATOR]

    @property
    def height(self) -> int:
        """The deepest level (1 for two tiers)."""
        return max(self.depth.values())

    @property
    def edges(self) -> list[tuple[str, str]]:
        """(parent, child) pairs."""
        return [(p, c) for c, p in self.parent.items()]

    def walk(self) -> Iterator[str]:
        """Node ids depth first from the leader, children in order."""
        stack = [self.root]
        while stack:
            current = stack.pop()
            yield current
            stack.extend(reversed(self.nodes[current].children))

    def ancestors(self, node_id: str) -> list[str]:
        """The node's parent, its parent's parent, … up to the leader."""
        out = []
        while node_id in self.parent:
            node_id = self.parent[node_id]
            out.append(node_id)
        return out

    def __len__(self) -> int:
        return len(self.nodes)


# -- factories -------------------------------------------------------------------------------


def _build(children: Mapping[str, list[str]], leader: str = "leader") -> Topology:
    nodes = {}
    for node_id, kids in children.items():
        kind = (
            NodeKind.LEADER
            if node_id == leader
            else (NodeKind.AGGREGATOR if kids else NodeKind.WORKER)
        )
        nodes[node_id] = Node(node_id, kind, tuple(kids))
    return Topology(nodes)


def two_tier(n: int) -> Topology:
    """A leader with ``n`` workers."""
    if n < 1:
        raise TopologyError(f"two_tier(n={n}): n must be at least 1")
    workers = [f"w{i}" for i in range(n)]
    return _build({"leader": workers, **{w: [] for w in workers}})


def balanced(branching: int, height: int) -> Topology:
    """Every inner node has ``branching`` children; workers at depth ``height``."""
    if branching < 1 or height < 1:
        raise TopologyError(f"balanced(branching={branching}, height={height}): both must be ≥ 1")
    if branching**height > 1_000_000:
        raise TopologyError(
            f"balanced({branching}, {height}) has {branching**height} workers; at most 1,000,000"
        )
    children: dict[str, list[str]] = {"leader": []}
    level = ["leader"]
    for depth in range(1, height + 1):
        prefix = "w" if depth == height else f"a{depth}."
        nxt: list[str] = []
        for parent in level:
            for _ in range(branching):
                name = f"{prefix}{len(nxt)}"
                children[parent].append(name)
                children[name] = []
                nxt.append(name)
        level = nxt
    return _build(children)


def fixed_leaves(leaves: int, height: int) -> Topology:
    """Flight's balanced tree for a leaf count: branching ``round(leaves^(1/height))``.

    As in Flight the result has ``r^height`` workers, which equals ``leaves`` only when it is a
    perfect power (256 at heights 1, 2, 4 and 8).
    """
    if leaves < 1 or height < 1:
        raise TopologyError(f"fixed_leaves(leaves={leaves}, height={height}): both must be ≥ 1")
    return balanced(max(1, round(leaves ** (1 / height))), height)


def hierarchical(workers: int, aggr_shape: list[int], seed: int = 0) -> Topology:
    """Tiers of aggregators (sizes ``aggr_shape``, top first), workers at the bottom.

    Each node is attached to a random node of the tier above; every node of a tier first gets
    one child, so no aggregator is left without one.
    """
    sizes = [*aggr_shape, workers]
    if any(s < 1 for s in sizes):
        raise TopologyError(
            f"hierarchical(workers={workers}, aggr_shape={aggr_shape}): every size must be ≥ 1"
        )
    if any(b < a for a, b in itertools.pairwise(sizes)):
        raise TopologyError(
            f"hierarchical(workers={workers}, aggr_shape={aggr_shape}): each tier "
            "needs at least as many nodes as the one above it"
        )
    rng = random.Random(seed)
    children: dict[str, list[str]] = {"leader": []}
    above = ["leader"]
    for depth, size in enumerate(sizes, start=1):
        prefix = "w" if depth == len(sizes) else f"a{depth}."
        tier = [f"{prefix}{i}" for i in range(size)]
        order = tier[:]
        rng.shuffle(order)
        for i, name in enumerate(order):  # one child for each node above, then at random
            parent = above[i] if i < len(above) else rng.choice(above)
            children[parent].append(name)
        for name in tier:
            children[name] = []
        for kids in children.values():
            kids.sort(key=lambda k: (len(k), k))
        above = tier
    return _build(children)


def message_counts(topology: Topology) -> tuple[int, int]:
    """Analytic model sizes per round of Flight's notebook, in units of one model.

    Returns (two-tier cost, hierarchical cost): a star sends the model once per edge down and
    each worker's model over every hop of its path up; a hierarchy sends one model per edge
    each way.
    """
    edges = len(topology.edges)
    hops = sum(topology.depth[w] for w in topology.workers)
    return edges + hops, 2 * edges


def reduction_percent(topology: Topology) -> float:
    """Flight's ">60 %": the hierarchical cost's saving on the two-tier cost, in percent."""
    star, tree = message_counts(topology)
    return 100 * (1 - tree / star) if star else 0.0


# -- the configs of conf/fl/topology -----------------------------------------------------------


class TwoTier(LoomModel):
    """A leader and ``workers`` workers."""

    kind: Literal["two_tier"] = "two_tier"
    workers: int = Field(12, ge=1, le=100_000, description="workers under the leader")

    def build(self) -> Topology:
        """The tree."""
        return two_tier(self.workers)


class Balanced(LoomModel):
    """Every inner node has ``branching`` children; workers at depth ``height``."""

    kind: Literal["balanced"] = "balanced"
    branching: int = Field(4, ge=1, le=100_000, description="children per inner node")
    height: int = Field(2, ge=1, le=20, description="depth of the workers")

    def build(self) -> Topology:
        """The tree."""
        return balanced(self.branching, self.height)


class FixedLeaves(LoomModel):
    """Flight's balanced tree for a leaf count: branching round(leaves^(1/height))."""

    kind: Literal["fixed_leaves"] = "fixed_leaves"
    leaves: int = Field(256, ge=1, le=100_000, description="workers wanted")
    height: int = Field(2, ge=1, le=20, description="depth of the workers")

    def build(self) -> Topology:
        """The tree."""
        return fixed_leaves(self.leaves, self.height)


class Hierarchical(LoomModel):
    """Tiers of aggregators of the given sizes, each node under a random one of the tier above."""

    kind: Literal["hierarchical"] = "hierarchical"
    workers: int = Field(16, ge=1, le=100_000, description="workers at the bottom")
    aggr_shape: list[int] = Field(
        default_factory=lambda: [2, 4], description="tier sizes, top first"
    )
    seed: int = Field(0, ge=0, description="seed of the random attachment")

    def build(self) -> Topology:
        """The tree."""
        return hierarchical(self.workers, self.aggr_shape, self.seed)


class TopologyFile(LoomModel):
    """A YAML or JSON file in Flight's node format (id → kind, children, attributes)."""

    kind: Literal["file"] = "file"
    path: str = Field(description="the file (relative to the project, or absolute)")

    @model_validator(mode="after")
    def _exists(self) -> Self:
        if not self.resolved().is_file():
            raise ValueError(f"path={self.path!r}: no such topology file")
        return self

    def resolved(self) -> Path:
        """The file: as given, or relative to the project."""
        path = Path(self.path)
        if not path.is_absolute() and not path.exists():
            path = Path(__file__).resolve().parents[2] / path
        return path

    def build(self) -> Topology:
        """The tree."""
        return Topology.from_file(self.resolved())


TopologyConfig = Annotated[
    TwoTier | Balanced | FixedLeaves | Hierarchical | TopologyFile, Field(discriminator="kind")
]
