"""TaPS-style synthetic workflows: the task function and the four task-graph structures."""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass, field
from typing import Literal

Structure = Literal["bag", "diamond", "reduce", "sequential"]


def synthetic_task(sleep_s: float, out_bytes: int, salt: int, *inputs: bytes) -> bytes:
    """Sleep, then return ``out_bytes`` bytes derived from the inputs and ``salt``.

    The output is a pure function of the inputs, so a workflow's result can be recomputed
    locally and compared with what the executor returned.
    """
    if sleep_s > 0:
        time.sleep(sleep_s)
    digest = hashlib.blake2b(salt.to_bytes(8, "little"))
    for data in inputs:
        digest.update(data)
    block = digest.digest()
    return (block * (out_bytes // len(block) + 1))[:out_bytes]


def noop() -> None:
    """A task that does nothing (warm-up and overhead measurements)."""


@dataclass(frozen=True)
class TaskSpec:
    """One task of a workflow: its sleep, and the indices of the tasks whose outputs it reads."""

    sleep_s: float
    parents: tuple[int, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Workflow:
    """A task graph in topological order; ``sinks`` are the tasks whose outputs are the result."""

    structure: Structure
    tasks: tuple[TaskSpec, ...]
    sinks: tuple[int, ...]
    payload: bytes
    payload_bytes: int

    def expected_outputs(self) -> dict[int, bytes]:
        """Recompute every sink's output locally (no sleeping)."""
        outputs: list[bytes] = []
        for index, spec in enumerate(self.tasks):
            inputs = [outputs[p] for p in spec.parents] if spec.parents else [self.payload]
            outputs.append(synthetic_task(0.0, self.payload_bytes, index, *inputs))
        return {index: outputs[index] for index in self.sinks}


def build_workflow(
    structure: Structure,
    tasks: int,
    sleep_s: float,
    sleep_jitter: float,
    payload_bytes: int,
    seed: int,
) -> Workflow:
    """Build a workflow of ``tasks`` parallel (or chained) tasks.

    ``bag``: independent tasks. ``reduce``: independent tasks then one task reading all their
    outputs. ``diamond``: one task, then ``tasks`` tasks reading its output, then one reading
    theirs. ``sequential``: a chain, each task reading the previous output.
    """
    rng = random.Random(seed)
    payload = rng.randbytes(payload_bytes)

    def sleep() -> float:
        return max(0.0, rng.gauss(sleep_s, sleep_jitter)) if sleep_jitter > 0 else sleep_s

    specs: list[TaskSpec] = []
    if structure == "bag":
        specs = [TaskSpec(sleep()) for _ in range(tasks)]
        sinks = tuple(range(tasks))
    elif structure == "reduce":
        specs = [TaskSpec(sleep()) for _ in range(tasks)]
        specs.append(TaskSpec(sleep(), tuple(range(tasks))))
        sinks = (tasks,)
    elif structure == "diamond":
        specs = [TaskSpec(sleep())]
        specs += [TaskSpec(sleep(), (0,)) for _ in range(tasks)]
        specs.append(TaskSpec(sleep(), tuple(range(1, tasks + 1))))
        sinks = (tasks + 1,)
    else:
        specs = [TaskSpec(sleep(), (i - 1,) if i else ()) for i in range(tasks)]
        sinks = (tasks - 1,)
    return Workflow(structure, tuple(specs), sinks, payload, payload_bytes)
