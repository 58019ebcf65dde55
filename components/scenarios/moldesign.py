"""``scenario=moldesign``: TaPS's molecular design campaign (Colmena's demo), on the task path.

Compute the ionization energy of ``initial_count`` random molecules with xTB, then, until
``search_count`` are computed: train a surrogate (k-NN over Morgan fingerprints) as a task,
score the whole search space with it in ``inference_chunks`` tasks that each receive the
trained model (through the data flow: a proxy of it, with ``dataflow=proxystore``), combine
the chunks in one more task, and compute the ``batch_size`` best-predicted new molecules.
Chemistry in :mod:`components.scenarios.molecules`.

Unlike TaPS: a failed computation is replaced by a molecule not yet tried (TaPS draws with
the same random state every time, so it retries one molecule for ever); the fingerprint
transformer does not start a process pool inside every task; and the result is checked:
every predicted chunk covers the search space once, every energy is plausible, and the best
molecule's energy computed again here equals the task's.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, model_validator

from components.base import RunContext, Scenario, ScenarioConfig, require_packages
from components.runtime.trial import TASK_PATH_FAULTS, TaskTrial

PLAUSIBLE_EV = (0.0, 40.0)  # an ionization energy outside this is a broken calculation
APP_PACKAGES = ("rdkit", "xtb", "ase", "sklearn")


class MolDesignConfig(ScenarioConfig):
    """TaPS moldesign: steer xTB calculations toward molecules of high ionization energy."""

    kind: Literal["moldesign"] = "moldesign"
    requires: ClassVar[tuple[str, ...]] = ("executor", "dataflow")
    fault_kinds: ClassVar[frozenset[str]] = TASK_PATH_FAULTS
    # CPU-bound on every executor worker: its makespan is the figure, so it runs alone.
    exclusive: ClassVar[bool] = True
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "makespan_s",
        "simulations",
        "best_ie_ev",
        "result_verified",
        "store_keys_leaked",
    )

    search_size: int = Field(2000, ge=8, le=1_000_000, description="molecules generated")
    initial_count: int = Field(8, ge=4, le=10_000, description="random first calculations")
    search_count: int = Field(24, ge=4, le=100_000, description="calculations in all")
    batch_size: int = Field(4, ge=1, le=10_000, description="calculations per round")
    inference_chunks: int = Field(8, ge=1, le=10_000, description="inference tasks per round")
    seed: int | None = Field(None, ge=0, description="search-space seed; null: the run's")

    @model_validator(mode="after")
    def _counts(self) -> Self:
        if self.initial_count > self.search_count:
            raise ValueError(
                f"initial_count={self.initial_count} exceeds search_count={self.search_count}"
            )
        if self.search_count > self.search_size:
            raise ValueError(
                f"search_count={self.search_count} exceeds search_size={self.search_size}"
            )
        return self

    def build(self) -> Scenario:
        """Create the scenario."""
        require_packages(self.kind, APP_PACKAGES)
        return MolDesign(self)


class MolDesign:
    """One trial: the campaign, then its checks."""

    def __init__(self, config: MolDesignConfig) -> None:
        self.config = config

    def run(self, ctx: RunContext) -> None:
        """Run the campaign and record it."""
        from components.scenarios import molecules as chem

        cfg = self.config
        seed = ctx.seed if cfg.seed is None else cfg.seed
        space = chem.search_space(cfg.search_size, seed)
        rng = random.Random(seed)
        untried = space[:]
        rng.shuffle(untried)  # random picks without repeats: pop from the end
        tried: set[str] = set()
        results: list[dict[str, Any]] = []
        coverage_ok = True
        failed = rounds = 0
        began = time.perf_counter()
        trial = TaskTrial(ctx)
        progress = ctx.progress.bar(f"trial {ctx.trial}: moldesign", cfg.search_count)
        with trial as path, progress as bar:

            def compute(picks: list[str], batch: int) -> None:
                nonlocal failed
                while picks:  # failures are replaced by untried molecules
                    handles = [
                        path.submit(chem.compute_vertical, s, name="simulate") for s in picks
                    ]
                    tried.update(picks)
                    path.wait()
                    picks = []
                    for smiles, handle in zip(
                        [str(h.args[0]) for h in handles], handles, strict=True
                    ):
                        if handle.success:
                            results.append(
                                {
                                    "smiles": smiles,
                                    "ie_ev": float(handle.value),
                                    "batch": batch,
                                    "time_s": time.perf_counter() - began,
                                }
                            )
                            bar.update(len(results))
                        else:
                            failed += 1
                            while untried and untried[-1] in tried:
                                untried.pop()
                            if untried:
                                picks.append(untried.pop())

            compute([untried.pop() for _ in range(cfg.initial_count)], 0)
            while len(results) < cfg.search_count:
                rounds += 1
                model = path.submit(
                    chem.train_model,
                    [r["smiles"] for r in results],
                    [r["ie_ev"] for r in results],
                    name="train",
                )
                size = math.ceil(len(space) / cfg.inference_chunks)
                chunks = [space[i : i + size] for i in range(0, len(space), size)]
                scored = [path.submit(chem.run_model, model, c, name="infer") for c in chunks]
                combined = path.submit(chem.combine_inferences, *scored, name="combine")
                path.wait()
                if not combined.success:
                    raise RuntimeError(f"round {rounds}: the surrogate failed: {combined.error}")
                predictions = combined.value
                coverage_ok &= [s for s, _ in predictions] == space
                ranked = sorted(predictions, key=lambda p: -p[1])
                want = min(cfg.batch_size, cfg.search_count - len(results))
                picks = [s for s, _ in ranked if s not in tried][:want]
                if not picks:
                    break  # the search space is exhausted
                compute(picks, rounds)
            seconds = time.perf_counter() - began
        energies = [r["ie_ev"] for r in results]
        best = max(results, key=lambda r: r["ie_ev"])
        recomputed = chem.compute_vertical(best["smiles"])  # here, not on a worker
        verified = (
            coverage_ok
            and len(results) >= min(cfg.search_count, cfg.search_size)
            and all(PLAUSIBLE_EV[0] < e < PLAUSIBLE_EV[1] for e in energies)
            and abs(recomputed - best["ie_ev"]) < 1e-6
        )
        initial = [r["ie_ev"] for r in results if r["batch"] == 0]
        ctx.write_records("molecules", results)
        _plot(results, ctx)
        trial.record(
            {
                "makespan_s": seconds,
                "simulations": float(len(results)),
                "simulations_failed": float(failed),
                "rounds": float(rounds),
                "best_ie_ev": best["ie_ev"],
                "initial_best_ie_ev": max(initial),
                "search_gain_ev": best["ie_ev"] - max(initial),
                "result_verified": float(verified),
            }
        )


def _plot(results: list[dict[str, Any]], ctx: RunContext) -> None:
    """Ionization energy of each calculation over time, and the best so far (TaPS's plot)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ordered = sorted(results, key=lambda r: r["time_s"])
    times = [r["time_s"] for r in ordered]
    energies = [r["ie_ev"] for r in ordered]
    best = [max(energies[: i + 1]) for i in range(len(energies))]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.scatter(times, energies, c=[r["batch"] for r in ordered], cmap="viridis", s=14)
    ax.step(times, best, "k--", where="post", label="best so far")
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel("ionization energy (eV, GFN2-xTB)")
    ax.set_title(f"moldesign, trial {ctx.trial}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(ctx.run_dir / f"moldesign-trial-{ctx.trial:03d}.png", dpi=120)
    plt.close(fig)
