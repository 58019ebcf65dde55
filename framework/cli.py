"""``loom`` command line: run, show, list, report."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from framework.compose import Composer
from framework.config import ACCOUNTING_METRICS
from framework.errors import ConfigError, LoomError
from framework.menu import default_options, menu_group
from framework.summary import print_summary

EPILOG = """examples:
  loom run recipe=quickstart
  loom run recipe=quickstart executor=process scenario.tasks=1000
  loom run -m recipe=taps/structures executor=thread,process scenario.structure=bag,reduce
  loom run -m recipe=taps/structures executor=thread,process resume=true
  loom run -j 2 recipe=drex/reliability_sweep scenario.replay=25
  loom run -m recipe=drex/reliability_sweep runner=dask runner.address=tcp://127.0.0.1:8786
  loom show recipe=taps/failures
  loom list executor
  loom report taps/structures --metrics tasks_per_s,overhead_per_task_ms
  loom report quickstart tracking=mlflow_server tracking.uri=http://127.0.0.1:5000
  loom up        # Prefect and MLflow servers that later runs use (loom ui, loom down)
"""

# Wide tables stay readable when output goes to a file or a CI log (unless COLUMNS says).
out = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160)
err = Console(stderr=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loom",
        description="Declarative experiments: recipe → config → Prefect → MLflow.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="compose a config and run it",
        description="Compose conf/ + recipes/ + overrides with Hydra, validate, "
        "run as one Prefect flow and track in MLflow.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "-m",
        "--multirun",
        action="store_true",
        help="sweep: comma-separated values (a=1,2) give one job per combination",
    )
    run.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show Prefect and MLflow log lines and tracebacks",
    )
    run.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="run N jobs at once: short for runner=processes runner.workers=N "
        "(with runner=dask or threads: that runner's workers=N)",
    )
    run.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="recipe=<name|file.yaml>, group=option or dotted.key=value",
    )
    run.set_defaults(func=cmd_run)

    show = sub.add_parser("show", help="print the resolved, validated config without running")
    show.add_argument("-m", "--multirun", action="store_true", help="show every job of a sweep")
    show.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    show.set_defaults(func=cmd_show)

    lst = sub.add_parser("list", help="list config groups, their options and fields")
    lst.add_argument("group", nargs="?", help="only this group (e.g. executor, recipe)")
    lst.set_defaults(func=cmd_list)

    report = sub.add_parser("report", help="compare a recipe's MLflow runs: table + plot")
    report.add_argument("recipe", help="recipe name, e.g. quickstart or taps/structures")
    report.add_argument(
        "--metrics", help="comma-separated metrics (default: the scenario's headline metrics)"
    )
    report.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="where the runs are, as for loom run: tracking=mlflow_server tracking.uri=http://...",
    )
    report.add_argument("--out", default="results/reports", help="output folder")
    report.set_defaults(func=cmd_report)

    for name, func, text in (
        ("up", cmd_up, "start a Prefect server and an MLflow server that later runs use"),
        ("down", cmd_down, "stop the servers loom up started"),
        ("status", cmd_status, "say whether the servers loom up started are running"),
        ("ui", cmd_ui, "print the addresses of the Prefect and MLflow UIs"),
    ):
        command = sub.add_parser(name, help=text, description=text + ".")
        command.add_argument(
            "--results-dir",
            default="results",
            help="the results folder whose servers these are (default: %(default)s)",
        )
        command.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status (2 for invalid input, 1 for failed runs)."""
    args = _parser().parse_args(argv)
    if args.command == "run" and not args.verbose and not os.environ.get("LOOM_NO_SPARE"):
        from framework.spare import hand_over

        # The run goes to the warm spare loom up keeps, where one waits.
        handed = hand_over(sys.argv[1:] if argv is None else list(argv), Path("results/services"))
        if handed is not None:
            return handed
    try:
        status: int = args.func(args)
        return status
    except LoomError as exc:
        # Escaped: a value such as [de-c0] in the message is not markup.
        err.print(f"[bold red]loom:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("loom: interrupted")
        return 130


def _jobs(args: argparse.Namespace) -> tuple[Composer, list[Any]]:
    from framework.engine import Job

    composer = Composer()
    job_overrides = composer.expand(_with_jobs_option(args), args.multirun)
    # Every job is validated before anything starts.
    jobs = [
        Job(i, overrides, composer.compose(overrides)) for i, overrides in enumerate(job_overrides)
    ]
    if len({j.config.recipe for j in jobs}) > 1:
        raise ConfigError("a sweep runs one recipe at a time; run each recipe separately")
    if len({j.config.root.tracking.uri for j in jobs}) > 1:
        raise ConfigError("all jobs of a sweep must use one tracking.uri")
    runners = {j.config.root.runner.model_dump_json() for j in jobs}
    if len(runners) > 1:
        raise ConfigError(
            "all jobs of a sweep must use one runner; sweep runner settings in separate invocations"
        )
    _check_runner(jobs)
    return composer, jobs


def _with_jobs_option(args: argparse.Namespace) -> list[str]:
    """The overrides, with ``-j N`` spelled out as the runner's workers."""
    overrides = list(args.overrides)
    jobs = getattr(args, "jobs", 1)
    if jobs < 1:
        raise ConfigError(f"-j {jobs}: need at least 1 job at once")
    if jobs == 1:
        return overrides
    chosen = next((o.split("=", 1)[1] for o in overrides if o.startswith("runner=")), None)
    if chosen is None:
        overrides.append("runner=processes")
    else:
        from framework.runners import RUNNER_OPTIONS

        model = RUNNER_OPTIONS.get(chosen)
        if model is not None and "workers" not in model.model_fields:
            parallel = [name for name, m in RUNNER_OPTIONS.items() if "workers" in m.model_fields]
            raise ConfigError(
                f"-j {jobs}: runner={chosen} runs one job at a time; drop -j, or pick "
                f"runner={' | '.join(parallel)}"
            )
    return [*overrides, f"runner.workers={jobs}"]


def _check_runner(jobs: list[Any]) -> None:
    """Refuse runner settings whose figures or records would be wrong."""
    config = jobs[0].config
    runner = config.root.runner
    if runner.remote and config.root.tracking.uri.startswith("sqlite:"):
        address = getattr(runner, "address", None)
        raise ConfigError(
            f"runner.address={address}: jobs on other machines cannot write the local "
            f"SQLite store tracking.uri={config.root.tracking.uri}; start an MLflow server and "
            "set tracking=mlflow_server tracking.uri=http://<host>:5000"
        )
    metered = [j for j in jobs if getattr(j.config.groups.get("energy"), "kind", "none") != "none"]
    if runner.shares_a_process and len(metered) > 1:
        raise ConfigError(
            f"runner=threads runs {runner.slots} jobs in one process, so each job's CPU-time "
            f"energy accounting (energy={metered[0].config.groups['energy'].kind}) would include "
            "the others'; use runner=processes or runner=dask, or energy=none"
        )


def cmd_run(args: argparse.Namespace) -> int:
    """``loom run``."""
    from framework.services import throwaway_prefect

    # Prefect's API for this run boots on the other core while the config is composed.
    return _run(args, throwaway_prefect(Path("results")))


def _run(args: argparse.Namespace, early_api: Any) -> int:
    from framework.engine import run_invocation

    composer, jobs = _jobs(args)
    declared = bool(composer.declared_sweep(list(args.overrides)))
    sweep = args.multirun or declared
    try:
        inv = run_invocation(
            jobs,
            root=composer.root,
            sweep=sweep,
            cli_overrides=list(args.overrides),
            verbose=args.verbose,
            console=err,
            early_api=early_api,
        )
    except LoomError:
        raise
    except Exception as exc:
        if args.verbose:
            raise
        raise LoomError(
            f"the run could not start: {type(exc).__name__}: {exc} (add -v for details)"
        ) from None
    print_summary(inv, out, ACCOUNTING_METRICS)
    return 1 if any(r.status == "failed" for r in inv.results) else 0


def cmd_show(args: argparse.Namespace) -> int:
    """``loom show``."""
    _, jobs = _jobs(args)
    for job in jobs:
        if len(jobs) > 1:
            out.print(f"# job {job.index}: {escape(job.label)}", highlight=False)
        out.print(
            yaml.safe_dump(job.config.to_dict(), sort_keys=False).rstrip(),
            highlight=False,
            markup=False,
        )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """``loom list``."""
    composer = Composer()
    groups = [*composer.groups(), "recipe"]
    if args.group and args.group not in groups:
        raise ConfigError(f"no config group '{args.group}'; groups: {', '.join(groups)}")
    defaults = default_options(composer)
    for group in [args.group] if args.group else groups:
        if group == "recipe":
            _list_recipes(composer)
            continue
        menu = menu_group(composer, group, defaults.get(group, "none"))
        table = Table(
            title=f"{group} (default: {menu.default}; choose with {group}=<option>)",
            title_justify="left",
            show_lines=False,
        )
        for column in ("option", "key", "default", "description"):
            table.add_column(column, overflow="fold")
        for option in menu.options:
            table.add_row(f"[bold]{option.name}[/]", "", "", option.summary)
            for field in option.fields:
                table.add_row("", field.key, field.default, field.description)
        out.print(table)
    return 0


def _list_recipes(composer: Composer) -> None:
    table = Table(title="recipe (run with recipe=<name>)", title_justify="left")
    table.add_column("recipe")
    table.add_column("description")
    for name in composer.recipes():
        try:
            data = yaml.safe_load((composer.recipes_dir / f"{name}.yaml").read_text()) or {}
        except (OSError, yaml.YAMLError):
            data = {"description": "(unreadable)"}
        table.add_row(name, str(data.get("description", "")))
    out.print(table)


def cmd_up(args: argparse.Namespace) -> int:
    """``loom up``."""
    from framework import services

    results = Path(args.results_dir)
    before = services.running(results)
    with err.status("starting the Prefect and MLflow servers (the first start takes longest)"):
        started = services.up(results)
    for service in started.values():
        note = "already running" if service.name in before else "started"
        out.print(f"{service.name}: {service.url}  ({note}, pid {service.pid})", highlight=False)
    out.print("loom run now records to these; loom down stops them.", highlight=False)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    """``loom down``."""
    from framework import services

    stopped = services.down(Path(args.results_dir))
    out.print(f"stopped: {', '.join(stopped)}" if stopped else "no server was running")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """``loom status``: exit 0 when both servers run, 1 otherwise."""
    from framework import services

    recorded = services.read(Path(args.results_dir))
    for name in ("prefect", "mlflow"):
        service = recorded.get(name)
        if service is None:
            out.print(f"{name}: not started (loom up starts it)", highlight=False)
        elif not service.alive():
            out.print(
                f"{name}: stopped (was pid {service.pid}; log {service.log})", highlight=False
            )
        else:
            health = "answering" if service.answers() else "not answering yet"
            out.print(f"{name}: {service.url}  (pid {service.pid}, {health})", highlight=False)
    alive = services.running(Path(args.results_dir))
    if alive:
        from framework.spare import waiting

        pid = waiting(services.state_dir(Path(args.results_dir)))
        ready = f"waiting for a run (pid {pid})" if pid else "starting (runs go in-process)"
        out.print(f"spare: {ready}", highlight=False)
    return 0 if {"prefect", "mlflow"} <= set(alive) else 1


def cmd_ui(args: argparse.Namespace) -> int:
    """``loom ui``."""
    from framework import services

    alive = services.running(Path(args.results_dir))
    if not alive:
        out.print(
            "no servers are running: loom up starts them; without them, open MLflow's UI "
            "on the local store with\n  mlflow ui --backend-store-uri "
            f"sqlite:///{Path(args.results_dir) / 'mlflow.db'} --port 5000",
            highlight=False,
        )
        return 1
    for name, service in alive.items():
        out.print(f"{name}: {service.url}", highlight=False)
    return 0


def _tracking_uri(overrides: list[str]) -> str:
    """The tracking store a run with these overrides would use (``tracking`` keys only)."""
    others = [o for o in overrides if not o.lstrip("+~").startswith("tracking")]
    if others:
        raise ConfigError(
            f"{others[0]}: loom report reads finished runs, so it takes only where they are "
            "(tracking=... and tracking.uri=...)"
        )
    return str(Composer().compose(overrides).root.tracking.uri)


def cmd_report(args: argparse.Namespace) -> int:
    """``loom report``."""
    from framework.report import make_report

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    report = make_report(args.recipe, _tracking_uri(args.overrides), Path(args.out), metrics)
    csv_path, png_path, table, extra = report
    out.print(table)
    if extra is not None:
        out.print(extra[1])
    out.print(f"Table: {csv_path}\nPlot:  {png_path}", highlight=False)
    if extra is not None:
        out.print(f"Comparison: {extra[0]}", highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
