"""``scenario=physics``: TaPS's physics app: golf balls rolling on a generated green (PyBullet).

A fractal-noise heightmap becomes a triangle mesh (a plain Python list of vertices and
indices, as in TaPS: an opaque object of a few MB that every task receives, the case where
passing by reference pays), and each task drops balls on it and steps PyBullet headless
(``real_time: false``: no sleeping between ticks) for ``total_time`` seconds of simulated time.

Unlike TaPS: the noise is generated here with numpy (the ``noise`` package is source-only); the
heightmap is scaled to [0, height] (TaPS divides by the maximum, not the range); each ball's
initial velocity is seeded (TaPS draws it from the worker's global random state, so runs
differ); each task has its own PyBullet client, so thread workers do not share one. The
result is checked: a ball still on the green rests on its surface, and the first ball
simulated again here ends where its task said.
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from components.base import RunContext, Scenario, ScenarioConfig, require_packages
from components.runtime.trial import TASK_PATH_FAULTS, TaskTrial

Position = tuple[float, float, float]
MAX_VERTICES_PER_MESH = 65_536  # half PyBullet's limit per mesh on Linux, as TaPS splits
SURFACE_TOLERANCE_M = 0.05


class PhysicsConfig(ScenarioConfig):
    """TaPS physics: balls dropped on a generated terrain, one PyBullet simulation per task."""

    kind: Literal["physics"] = "physics"
    requires: ClassVar[tuple[str, ...]] = ("executor", "dataflow")
    fault_kinds: ClassVar[frozenset[str]] = TASK_PATH_FAULTS
    # CPU-bound on every executor worker: its makespan is the figure, so it runs alone.
    exclusive: ClassVar[bool] = True
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "makespan_s",
        "simulations",
        "mesh_mb",
        "result_verified",
        "store_keys_leaked",
    )

    simulations: int = Field(16, ge=1, le=100_000, description="tasks (one ball each)")
    balls_per_simulation: int = Field(1, ge=1, le=10_000, description="balls per task")
    ball_diameter: float = Field(0.2, gt=0, le=10, description="m")
    ball_mass: float = Field(0.05, gt=0, le=100, description="kg")
    tick_rate: int = Field(240, ge=1, le=10_000, description="simulation steps per second")
    total_time: float = Field(10.0, gt=0, le=3600, description="simulated seconds per task")
    terrain_width: int = Field(20, ge=2, le=1000, description="m (the green is square)")
    terrain_height: float = Field(3.0, gt=0, le=100, description="m, highest point")
    terrain_resolution: int = Field(10, ge=1, le=100, description="mesh points per m")
    terrain_scale: float = Field(10.0, gt=0, le=1000, description="m per noise period")
    terrain_octaves: int = Field(3, ge=1, le=10, description="noise octaves")
    terrain_persistence: float = Field(0.2, gt=0, le=1, description="amplitude per octave")
    terrain_lacunarity: float = Field(2.0, ge=1, le=10, description="frequency per octave")
    terrain_filter_size: float = Field(2.0, ge=0, le=100, description="Gaussian smoothing (points)")
    seed: int | None = Field(None, ge=0, description="terrain and ball seed; null: the run's")

    def build(self) -> Scenario:
        """Create the scenario."""
        require_packages(self.kind, ("pybullet",))
        return Physics(self)


def gradient_noise(size: int, period: float, seed: int) -> np.ndarray:
    """Perlin gradient noise on a ``size`` × ``size`` grid, ``period`` points per cell."""
    rng = np.random.default_rng(seed)
    cells = math.ceil(size / period) + 2
    angles = rng.uniform(0, 2 * np.pi, (cells, cells))
    gx, gy = np.cos(angles), np.sin(angles)
    coords = np.arange(size) / period
    x, y = np.meshgrid(coords, coords, indexing="ij")
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0

    def corner(dx: int, dy: int) -> np.ndarray:
        return np.asarray(gx[x0 + dx, y0 + dy] * (fx - dx) + gy[x0 + dx, y0 + dy] * (fy - dy))

    def fade(t: np.ndarray) -> np.ndarray:
        return np.asarray(t * t * t * (t * (t * 6 - 15) + 10))

    u, v = fade(fx), fade(fy)
    bottom = corner(0, 0) * (1 - u) + corner(1, 0) * u
    top = corner(0, 1) * (1 - u) + corner(1, 1) * u
    return np.asarray(bottom * (1 - v) + top * v)


def heightmap(cfg: PhysicsConfig, seed: int) -> np.ndarray:
    """Fractal noise (octaves of gradient noise), smoothed, scaled to [0, terrain_height]."""
    from scipy.ndimage import gaussian_filter

    size = cfg.terrain_width * cfg.terrain_resolution
    period = cfg.terrain_scale * cfg.terrain_resolution
    total = np.zeros((size, size))
    for octave in range(cfg.terrain_octaves):
        total += cfg.terrain_persistence**octave * gradient_noise(
            size, period / cfg.terrain_lacunarity**octave, seed + octave
        )
    total = gaussian_filter(total, cfg.terrain_filter_size)
    low, high = total.min(), total.max()
    return np.asarray((total - low) * cfg.terrain_height / max(high - low, 1e-12))


def mesh(height: np.ndarray, resolution: int) -> list[tuple[float, float, list[Any], list[int]]]:
    """The heightmap as triangle meshes, in strips of at most MAX_VERTICES_PER_MESH points.

    Each part is (x offset, y offset, vertices, indices); rows overlap by one so the strips
    join without a seam.
    """
    rows, cols = height.shape
    parts = math.ceil(rows * cols / MAX_VERTICES_PER_MESH)
    step = math.ceil(rows / parts)
    out = []
    for r0 in range(0, rows, step):
        block = height[r0 : min(rows, r0 + step + 1)]
        n, m = block.shape
        vertices = [
            (j / resolution, i / resolution, float(block[i, j])) for i in range(n) for j in range(m)
        ]
        indices: list[int] = []
        for i in range(n - 1):
            for j in range(m - 1):
                a = i * m + j
                indices += [a, a + 1, a + m, a + m, a + 1, a + m + 1]
        out.append((0.0, r0 / resolution, vertices, indices))
    return out


def start_positions(cfg: PhysicsConfig, seed: int) -> list[Position]:
    """Balls above the middle 60 % of the green, at twice its height."""
    rng = np.random.default_rng(seed)
    low, high = 0.2 * cfg.terrain_width, 0.8 * cfg.terrain_width
    count = cfg.simulations * cfg.balls_per_simulation
    xy = rng.uniform(low, high, (count, 2))
    return [(float(x), float(y), 2 * cfg.terrain_height) for x, y in xy]


def simulate(
    terrain: list[tuple[float, float, list[Any], list[int]]],
    positions: list[Position],
    velocities: list[tuple[float, float]],
    settings: tuple[float, float, int, float],
) -> list[Position]:
    """Drop balls on the terrain and step the simulation; their final positions."""
    import pybullet

    diameter, mass, tick_rate, total_time = settings
    client = pybullet.connect(pybullet.DIRECT)  # a client of its own: threads do not share
    try:
        pybullet.setTimeStep(1 / tick_rate, physicsClientId=client)
        pybullet.setGravity(0, 0, -9.81, physicsClientId=client)
        for x, y, vertices, indices in terrain:
            shape = pybullet.createCollisionShape(
                pybullet.GEOM_MESH, vertices=vertices, indices=indices, physicsClientId=client
            )
            pybullet.createMultiBody(0, shape, basePosition=[x, y, 0], physicsClientId=client)
        balls = []
        for position, (vx, vy) in zip(positions, velocities, strict=True):
            sphere = pybullet.createCollisionShape(
                pybullet.GEOM_SPHERE, radius=diameter / 2, physicsClientId=client
            )
            ball = pybullet.createMultiBody(
                mass, sphere, basePosition=list(position), physicsClientId=client
            )
            pybullet.changeDynamics(
                ball,
                -1,
                lateralFriction=0.2,
                rollingFriction=0.05,
                spinningFriction=0.05,
                physicsClientId=client,
            )
            pybullet.resetBaseVelocity(ball, linearVelocity=[vx, vy, 0], physicsClientId=client)
            balls.append(ball)
        for _ in range(int(total_time * tick_rate)):
            pybullet.stepSimulation(physicsClientId=client)
        return [
            tuple(pybullet.getBasePositionAndOrientation(b, physicsClientId=client)[0])
            for b in balls
        ]
    finally:
        pybullet.disconnect(physicsClientId=client)


def surface_at(height: np.ndarray, resolution: int, x: float, y: float) -> float | None:
    """The terrain height under (x, y), bilinear; None off the green."""
    i, j = y * resolution, x * resolution
    rows, cols = height.shape
    if not (0 <= i <= rows - 1 and 0 <= j <= cols - 1):
        return None
    i0, j0 = min(int(i), rows - 2), min(int(j), cols - 2)
    di, dj = i - i0, j - j0
    top = height[i0, j0] * (1 - dj) + height[i0, j0 + 1] * dj
    bottom = height[i0 + 1, j0] * (1 - dj) + height[i0 + 1, j0 + 1] * dj
    return float(top * (1 - di) + bottom * di)


class Physics:
    """One trial: generate the green, simulate every ball, check where they rest."""

    def __init__(self, config: PhysicsConfig) -> None:
        self.config = config

    def run(self, ctx: RunContext) -> None:
        """Run the simulations and record them."""
        import pickle

        cfg = self.config
        seed = ctx.seed if cfg.seed is None else cfg.seed
        height = heightmap(cfg, seed)
        terrain = mesh(height, cfg.terrain_resolution)
        mesh_bytes = len(pickle.dumps(terrain, protocol=5))
        starts = start_positions(cfg, seed)
        speed = 0.1 * cfg.terrain_width
        rng = np.random.default_rng(seed + 1)
        velocities = [(float(a), float(b)) for a, b in rng.uniform(-speed, speed, (len(starts), 2))]
        settings = (cfg.ball_diameter, cfg.ball_mass, cfg.tick_rate, cfg.total_time)
        k = cfg.balls_per_simulation
        trial = TaskTrial(ctx)
        began = time.perf_counter()
        with trial as path, ctx.progress.bar(f"trial {ctx.trial}: physics", cfg.simulations):
            handles = [
                path.submit(
                    simulate,
                    terrain,
                    starts[i * k : (i + 1) * k],
                    velocities[i * k : (i + 1) * k],
                    settings,
                    name="simulate",
                )
                for i in range(cfg.simulations)
            ]
            path.wait()
            seconds = time.perf_counter() - began
            ok = all(h.success for h in handles)
            finals = [p for h in handles if h.success for p in h.value]
        radius = cfg.ball_diameter / 2
        on_green = resting = 0
        for x, y, z in finals:
            ground = surface_at(height, cfg.terrain_resolution, x, y)
            if ground is not None:
                on_green += 1
                resting += abs(z - radius - ground) < SURFACE_TOLERANCE_M
        again = simulate(terrain, starts[:k], velocities[:k], settings) if ok else []
        # A ball that rolled off the green is legitimate physics; one on it must rest on it.
        verified = ok and resting == on_green and np.allclose(again, finals[:k], atol=1e-9)
        ctx.write_records(
            "balls",
            [{"start": list(s), "final": list(f)} for s, f in zip(starts, finals, strict=False)],
        )
        _plot(height, cfg, starts, finals, ctx)
        trial.record(
            {
                "makespan_s": seconds,
                "simulations": float(cfg.simulations),
                "balls_on_green": float(on_green),
                "balls_off_green": float(len(finals) - on_green),
                "mesh_mb": mesh_bytes / 1e6,
                "result_verified": float(verified),
            }
        )


def _plot(
    height: np.ndarray,
    cfg: PhysicsConfig,
    starts: list[Position],
    finals: list[Position],
    ctx: RunContext,
) -> None:
    """Contours of the green with the balls where they started and where they stopped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    side = np.arange(height.shape[0]) / cfg.terrain_resolution
    fig, axes = plt.subplots(1, 2, sharey=True, figsize=(8, 4))
    for ax, balls, title in zip(axes, (starts, finals), ("start", "end"), strict=True):
        ax.contour(side, side, height, levels=10)
        w = cfg.terrain_width
        ax.scatter(
            [min(max(b[0], 0), w) for b in balls],
            [min(max(b[1], 0), w) for b in balls],
            s=14,
            c="k",
        )
        ax.set_title(f"balls at the {title}")
        ax.set_xlabel("x (m)")
        ax.set_xlim(0, w)
        ax.set_ylim(0, w)
    axes[0].set_ylabel("y (m)")
    fig.tight_layout()
    fig.savefig(ctx.run_dir / f"physics-trial-{ctx.trial:03d}.png", dpi=120)
    plt.close(fig)
