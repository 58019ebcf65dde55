"""The live workload's functions: real work in the spirit of the SeBS benchmarks the authors ran.

- ``bfs``, ``mst``, ``pagerank``: igraph on a generated Barabási–Albert graph (SeBS's
  ``graph-*``: ``Graph.Barabasi(n, 10)``); feature: nodes.
- ``compression``: generated text files archived with ``shutil.make_archive`` (SeBS's
  ``compression`` zips a directory); feature: bytes.
- ``thumbnail``: a generated image shrunk to 200 × 200 with Pillow (SeBS's ``thumbnailer``);
  feature: pixels on a side.
- ``matmul``: a numpy matrix product on one BLAS thread (the authors' profiling kernel);
  feature: matrix order.

Each input is generated from the task's seed, so a task is the same wherever it runs.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path

import numpy as np

# function → (smallest, largest) size at scale 1: each task takes about 0.02-0.3 s here.
LIVE_FUNCTIONS: dict[str, tuple[float, float]] = {
    "bfs": (10_000, 40_000),
    "mst": (10_000, 40_000),
    "pagerank": (10_000, 40_000),
    "compression": (1_000_000, 4_000_000),
    "thumbnail": (600, 1_400),
    "matmul": (400, 1_000),
}
_WORDS = np.array(
    [
        "energy",
        "aware",
        "placement",
        "of",
        "tasks",
        "over",
        "heterogeneous",
        "endpoints",
        "lowers",
        "the",
        "product",
        "of",
        "energy",
        "and",
        "delay",
        "when",
        "clusters",
        "of",
        "similar",
        "tasks",
        "move",
        "together",
        "between",
        "a",
        "desktop",
        "and",
        "a",
        "cluster",
    ]
)


def _graph(nodes: int, seed: int) -> object:
    import random

    import igraph

    random.seed(seed)  # igraph draws from Python's generator
    return igraph.Graph.Barabasi(nodes, 10)


def _compress(size: int, seed: int) -> int:
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(prefix="loom-compress-") as tmp:
        source = Path(tmp) / "input"
        source.mkdir()
        for index in range(4):
            words = rng.choice(_WORDS, size // 4 // 7 + 1)
            (source / f"part-{index}.txt").write_text(" ".join(words)[: size // 4])
        archive = shutil.make_archive(str(Path(tmp) / "archive"), "zip", source)
        return Path(archive).stat().st_size


def _thumbnail(side: int, seed: int) -> int:
    from PIL import Image

    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, side, dtype=np.float32)
    pixels = (ramp[None, :, None] + ramp[:, None, None]) / 2 + rng.normal(0, 20, (side, side, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    image.thumbnail((200, 200))
    out = io.BytesIO()
    image.save(out, "JPEG")
    return out.tell()


def _matmul(order: int, seed: int) -> int:
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    a, b = rng.random((order, order)), rng.random((order, order))
    with threadpool_limits(1):
        return int((a @ b).sum())


def run_function(name: str, size: float, seed: int) -> int:
    """Run one task of ``name`` on an input of ``size``; a small number derived from the result.

    Raises:
        ValueError: ``name`` is not a live function.

    """
    n = int(size)
    if name == "bfs":
        return len(_graph(n, seed).bfs(0)[0])  # type: ignore[attr-defined]
    if name == "mst":
        return len(_graph(n, seed).spanning_tree(None, False))  # type: ignore[attr-defined]
    if name == "pagerank":
        return int(np.argmax(_graph(n, seed).pagerank()))  # type: ignore[attr-defined]
    if name == "compression":
        return _compress(n, seed)
    if name == "thumbnail":
        return _thumbnail(n, seed)
    if name == "matmul":
        return _matmul(n, seed)
    raise ValueError(f"unknown function {name!r}; known: {', '.join(LIVE_FUNCTIONS)}")
