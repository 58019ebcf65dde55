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
import hashlib
import inspect
import json
import multiprocessing
import os
import random
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from framework import registry
from framework.compose import Composer
from framework.errors import ConfigError

# Overrides that make each scenario's run take seconds, not minutes.
SMALL: dict[str, tuple[str, ...]] = {
    "accounting": ("scenario.tasks_per_function=2",),
    "cholesky": ("scenario.matrix_size=120", "scenario.block_size=60"),
    "energy_aware_placement": ("scenario.tasks_per_function=8",),
    "event_access": ("recipe=octopus/acl", "scenario.events=10"),
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
    # Failure rates on every container, so that the reliability placers (D-Rex, ...) can run.
    "storage_benchmark": ("scenario.objects=2", "storage.afr_pct=1.0"),
    "steered_federation": ("recipe=composite/carbon_schedules", "fl.rounds=2"),
    "storage_faults": ("scenario.objects=2", "storage.afr_pct=1.0"),
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
    """Every scenario × every option of each group it consumes, then the three-way seams.

    A group an option reads only under some setting (the fabric connector reads ``storage``,
    ``coding`` and ``placement``) is crossed too: with that setting, on the first scenario that
    uses the option's group (``synthetic`` where it does).
    """
    scenarios = registry.options("scenario")
    requires = {s: getattr(registry.config_model("scenario", s), "requires", ()) for s in scenarios}
    for scenario in scenarios:
        yield Combination(scenario, ())
        for group in requires[scenario]:
            for option in composer.options(group):
                yield Combination(scenario, (f"{group}={option}",))
    for group in registry.groups():
        users = [s for s in ("synthetic", *scenarios) if group in requires.get(s, ())]
        for option in registry.options(group):
            reads = getattr(registry.config_model(group, option), "optional_reads", {})
            for read, setting in reads.items():
                for choice in composer.options(read):
                    if users:
                        yield Combination(
                            users[0], (f"{group}={option}", setting, f"{read}={choice}")
                        )
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
    """Every combination, validated (no run).

    Hydra composes each combination in turn (about 0.2 s each), so this runs on every core,
    and the verdicts are kept under ``results/.cache`` keyed by everything they depend on: the
    menu, the recipes, the engine's and every option's source, the library versions. The docs
    build then reuses what the test suite judged, and any change judges afresh.
    """
    composer = composer or Composer()
    cache = composer.root / "results" / ".cache" / f"matrix-{_inputs_digest(composer)}.json"
    if cache.is_file():
        return [_verdict(row) for row in json.loads(cache.read_text(encoding="utf-8"))]
    verdicts = _judge_all(composer)
    cache.parent.mkdir(parents=True, exist_ok=True)
    for stale in cache.parent.glob("matrix-*.json"):
        stale.unlink(missing_ok=True)
    partial = cache.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps([_row(v) for v in verdicts]), encoding="utf-8")
    partial.replace(cache)  # whole or absent: a reader never sees half a file
    return verdicts


def _judge_all(composer: Composer) -> list[Verdict]:
    unique = list(dict.fromkeys(combinations(composer)))
    workers = min(len(unique), os.cpu_count() or 1)
    if workers < 2:
        return [judge(composer, c) for c in unique]
    spawn = multiprocessing.get_context("spawn")  # the caller may hold threads: no fork
    with ProcessPoolExecutor(workers, spawn, _start_judge, (str(composer.root),)) as pool:
        return list(pool.map(_judge_here, unique, chunksize=8))


def _inputs_digest(composer: Composer) -> str:
    """A digest of everything a verdict depends on."""
    digest = hashlib.sha256()
    files = [
        *sorted(composer.conf_dir.rglob("*.yaml")),
        *sorted(composer.recipes_dir.rglob("*.yaml")),
        *sorted(Path(__file__).parent.glob("*.py")),
    ]
    packages: set[str] = set()
    for group in registry.groups():
        for option in registry.options(group):
            model = registry.config_model(group, option)
            digest.update(f"{group}={option}:{model.__module__}.{model.__qualname__}".encode())
            packages.add(model.__module__.split(".", 1)[0])
    for package in sorted(packages):  # every module of the packages options come from
        files += sorted(Path(inspect.getfile(sys.modules[package])).parent.rglob("*.py"))
    for path in dict.fromkeys(files):
        digest.update(str(path).encode())
        digest.update(path.read_bytes())
    for package in ("hydra-core", "omegaconf", "pydantic", "pydantic-core"):
        digest.update(f"{package}={metadata.version(package)}".encode())
    return digest.hexdigest()[:20]


def _row(verdict: Verdict) -> dict[str, Any]:
    c = verdict.combination
    return {
        "scenario": c.scenario,
        "choices": list(c.choices),
        "accepted": verdict.accepted,
        "reason": verdict.reason,
    }


def _verdict(row: dict[str, Any]) -> Verdict:
    combination = Combination(row["scenario"], tuple(row["choices"]))
    return Verdict(combination, bool(row["accepted"]), str(row["reason"]))


_composer: Composer | None = None


def _start_judge(root: str) -> None:
    global _composer
    _composer = Composer(Path(root))


def _judge_here(combination: Combination) -> Verdict:
    assert _composer is not None
    return judge(_composer, combination)


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
    parser.add_argument(
        "--services",
        action="store_true",
        help="start an S3 server and a Kafka broker on loopback, and point storage=s3 and "
        "events=kafka at them (else those combinations fail for want of one)",
    )
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
    with ExitStack() as stack:
        extra = stack.enter_context(services()) if args.services else {}
        if extra and not args.sample:  # refused for want of a service: judged again with it
            chosen += [
                v.combination
                for v in verdicts
                if not v.accepted
                and any(key in v.combination.choices for key in extra)
                and _judge_with(v.combination, extra)
            ]
        failed = []
        for number, combination in enumerate(chosen, 1):
            print(f"[{number}/{len(chosen)}] {combination.label}", flush=True)
            if loom(["run", *_with_services(combination, extra)]) != 0:
                failed.append(combination.label)
    print(f"ran {len(chosen)}: {len(chosen) - len(failed)} worked, {len(failed)} failed")
    for label in failed:
        print(f"  failed: {label}")
    return 1 if failed else 0


def _with_services(combination: Combination, extra: dict[str, list[str]]) -> list[str]:
    """The combination's overrides, plus those pointing its services at the started ones."""
    overrides = combination.overrides()
    return overrides + [o for key, more in extra.items() if key in overrides for o in more]


def _judge_with(combination: Combination, extra: dict[str, list[str]]) -> bool:
    try:
        Composer().compose(_with_services(combination, extra))
    except ConfigError:
        return False
    return True


@contextmanager
def services() -> Iterator[dict[str, list[str]]]:
    """An S3 server (moto) and a Kafka-protocol broker on loopback, for the whole run.

    Yields the overrides that point ``storage=s3`` and ``events=kafka`` at them.
    """
    from moto.server import ThreadedMotoServer

    from components.loopback import free_port

    port = free_port()
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    s3.start()
    events: Any = registry.config_model("events", "embedded").model_validate({}).build()
    try:
        with events as broker:
            yield {
                "storage=s3": [
                    f"storage.endpoint_url=http://127.0.0.1:{port}",
                    "storage.key=loom",
                    "storage.secret=loom-secret",
                ],
                "events=kafka": [f"events.bootstrap_servers={broker.bootstrap_servers}"],
            }
    finally:
        s3.stop()


if __name__ == "__main__":
    sys.exit(main())
