"""The composition matrix: every scenario with every option of every group it consumes.

Each combination is one scenario at a small size with one group switched to one of its options,
plus the combinations where three groups meet on one task path (executor × data-flow connector,
and × steering queues). A combination is either refused at validation, with the reason, or
accepted; an accepted one must then run to a verified result. ``python -m framework.matrix``
prints the matrix (``--run`` runs the accepted combinations too, ``--sample N`` a seeded
sample of them); the docs publish it, and the test suite validates all of it and runs a sample.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from framework import registry
from framework.compose import Composer
from framework.errors import ConfigError

# Overrides that make each scenario's run take seconds, not minutes.
SMALL: dict[str, tuple[str, ...]] = {
    "accounting": ("scenario.tasks_per_function=2",),
    "cholesky": ("scenario.matrix_size=120", "scenario.block_size=60"),
    "energy_aware_placement": ("scenario.tasks_per_function=8",),
    "event_access": ("scenario.events=10",),
    "event_throughput": (),
    "event_triggers": ("recipe=octopus/triggers", "scenario.events=50"),
    "federated": ("fl.rounds=1",),
    "futures_chain": (
        "dataflow=proxystore",
        "scenario.tasks=2",
        "scenario.task_s=0.01",
        "scenario.data_bytes=100000",
    ),
    "mapreduce": ("scenario.files=2", "scenario.words_per_file=200", "scenario.vocabulary=50"),
    "moldesign": (
        "scenario.search_size=16",
        "scenario.initial_count=4",
        "scenario.search_count=6",
        "scenario.batch_size=2",
    ),
    "physics": ("scenario.simulations=2", "scenario.total_time=0.5"),
    "placement_simulation": (),
    "steered_campaign": ("scenario.evaluations=6", "scenario.runtime_median_s=0.01"),
    "storage_benchmark": ("scenario.objects=2",),
    "storage_faults": ("scenario.objects=2",),
    "stream": ("dataflow=proxystore", "scenario.items=4", "scenario.item_bytes=100000"),
    "synthetic": ("scenario.tasks=4",),
}
ONE_TRIAL = ("repeats=1",)


@dataclass(frozen=True)
class Combination:
    """One point of the matrix: a scenario and the options it is run with.

    Attributes:
        scenario: The scenario option.
        choices: ``group=option`` (or ``group.key=value``) settings this point is about.

    """

    scenario: str
    choices: tuple[str, ...]

    @property
    def label(self) -> str:
        """``scenario × choices``, as the tables show it."""
        return " ".join((f"scenario={self.scenario}", *self.choices))

    def overrides(self) -> list[str]:
        """The full override list of a run of this point."""
        return [
            f"scenario={self.scenario}",
            *SMALL.get(self.scenario, ()),
            *ONE_TRIAL,
            *self.choices,
        ]


@dataclass(frozen=True)
class Verdict:
    """What validation says of a combination: ``accepted``, or ``refused`` with the reason."""

    combination: Combination
    accepted: bool
    reason: str = ""


def combinations(composer: Composer) -> Iterator[Combination]:
    """Every scenario × every option of each group it consumes, then the three-way seams."""
    for scenario in registry.options("scenario"):
        requires = getattr(registry.config_model("scenario", scenario), "requires", ())
        yield Combination(scenario, ())
        for group in requires:
            for option in composer.options(group):
                yield Combination(scenario, (f"{group}={option}",))
    for executor in composer.options("executor"):
        for connector in ("file", "redis", "zmq", "fabric"):
            flow = ("dataflow=proxystore", f"dataflow.connector={connector}")
            yield Combination("synthetic", (f"executor={executor}", *flow))
            for queues in ("pipes", "redis", "fabric"):
                yield Combination(
                    "steered_campaign",
                    (f"executor={executor}", *flow, f"scenario.queues={queues}"),
                )


def judge(composer: Composer, combination: Combination) -> Verdict:
    """Validate one combination."""
    try:
        composer.compose(combination.overrides())
    except ConfigError as exc:
        return Verdict(combination, False, "; ".join(exc.problems) or str(exc))
    return Verdict(combination, True)


def matrix(composer: Composer | None = None) -> list[Verdict]:
    """Every combination, validated (no run)."""
    composer = composer or Composer()
    seen: set[tuple[str, tuple[str, ...]]] = set()
    verdicts = []
    for combination in combinations(composer):
        key = (combination.scenario, combination.choices)
        if key not in seen:
            seen.add(key)
            verdicts.append(judge(composer, combination))
    return verdicts


def sample(verdicts: list[Verdict], count: int, seed: int) -> list[Combination]:
    """``count`` accepted combinations, chosen by ``seed``."""
    accepted = [v.combination for v in verdicts if v.accepted]
    return random.Random(seed).sample(accepted, min(count, len(accepted)))


def markdown(verdicts: list[Verdict]) -> str:
    """The matrix as a Markdown table."""
    lines = ["| combination | verdict |", "|---|---|"]
    for v in verdicts:
        verdict = "accepted" if v.accepted else f"refused: {v.reason}"
        cell = verdict.replace("|", "\\|")
        lines.append(f"| `{v.combination.label}` | {cell} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the matrix; with ``--run``, run the accepted combinations (or a sample)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--run", action="store_true", help="run the accepted combinations")
    parser.add_argument("--sample", type=int, default=0, help="run only N of them (seeded)")
    parser.add_argument("--seed", type=int, default=0, help="the sample's seed")
    args = parser.parse_args(argv)
    verdicts = matrix()
    print(markdown(verdicts))
    accepted = sum(v.accepted for v in verdicts)
    print(f"{len(verdicts)} combinations: {accepted} accepted, {len(verdicts) - accepted} refused")
    if not args.run:
        return 0
    from framework.cli import main as loom

    chosen = (
        sample(verdicts, args.sample, args.seed)
        if args.sample
        else [v.combination for v in verdicts if v.accepted]
    )
    failed = [c.label for c in chosen if loom(["run", *c.overrides()]) != 0]
    print(f"ran {len(chosen)}: {len(chosen) - len(failed)} worked, {len(failed)} failed")
    for label in failed:
        print(f"  failed: {label}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
