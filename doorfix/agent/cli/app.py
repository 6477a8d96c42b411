"""The ``doorfix`` command line: a thin layer over the agent and the sandbox."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from doorfix import __version__
from doorfix.agent.cli.approvals import register as register_approvals
from doorfix.agent.cli.daemon import register as register_daemon
from doorfix.agent.cli.reports import register as register_reports
from doorfix.agent.cli.session import Loaded, load, log_redactor, open_agent
from doorfix.agent.engine.collect_aca import UnresolvedError
from doorfix.agent.engine.progress import Progress, progress_display
from doorfix.agent.engine.report import RunReport, render_table
from doorfix.agent.engine.run import PLAYBOOKS, RunFailed, run_once
from doorfix.agent.engine.state import Agent
from doorfix.agent.engine.ticket import diagnose_ticket
from doorfix.clock import utc
from doorfix.errors import AuthError, ConfigError, JournalError
from doorfix.log import configure_logging
from doorfix.text import printable

app = typer.Typer(
    name="doorfix",
    help="Automated remediation agent for door-access failures.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Exit codes (DESIGN.md): 0 completed, 1 could not complete, 2 bad config or credentials.
EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def _version(value: bool) -> None:
    if value:
        typer.echo(f"doorfix {__version__}")
        raise typer.Exit


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Config file (TOML); default $DOORFIX_CONFIG."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    """Automated remediation agent for door-access failures."""
    ctx.obj = {"config": config}


def _params(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError("expected KEY=VALUE", key=f"--param {item}")
        out[key.strip()] = value.strip()
    return out


@app.command()
def sandbox(
    scenario: Annotated[str, typer.Option(help="Scenario to seed: demo or scale.")] = "demo",
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8600,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same world.")] = 0,
    speed: Annotated[
        float, typer.Option(help="Clock speed: 1 is real time, 60 runs an hour a minute.")
    ] = 1.0,
    start: Annotated[
        datetime | None, typer.Option(help="Simulated start time (UTC); default now.")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Scenario parameter KEY=VALUE (repeatable)."),
    ] = None,
) -> None:
    """Serve the simulated cloud, ACA and CLP on 127.0.0.1, seeded with a scenario."""
    from doorfix.sandbox.api.server import serve  # noqa: PLC0415 - keep CLI start-up light

    try:
        params = _params(param or [])
    except ConfigError as exc:
        typer.echo(f"doorfix: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    serve(scenario, port=port, seed=seed, speed=speed, start=start, params=params)


def _loaded(ctx: typer.Context) -> Loaded:
    try:
        return load(ctx.obj["config"])
    except ConfigError as exc:
        _fail_config(exc)


def _fail_config(exc: Exception) -> NoReturn:
    typer.echo(f"doorfix: {printable(str(exc))}", err=True)
    raise typer.Exit(EXIT_CONFIG)


def _print(report: RunReport, *, as_json: bool) -> None:
    if as_json:
        typer.echo(report.to_json())
    else:
        render_table(report, Console())


def _run_command(
    work: Callable[[Agent, Progress], Awaitable[RunReport]], loaded: Loaded, as_json: bool
) -> None:
    """Run ``work`` with an agent; print the report; map failures to DESIGN's exit codes."""

    redactor = log_redactor(loaded)

    async def go(progress: Progress) -> RunReport:
        async with open_agent(loaded, redactor=redactor) as agent:
            return await work(agent, progress)

    try:
        # on a terminal only: on a pipe the display would only add blank lines to stderr
        with progress_display(enabled=False if as_json else None) as progress:
            # inside the display: rich swaps stderr for a proxy the log lines must go through
            configure_logging(level="warning", secrets=redactor)
            report = asyncio.run(go(progress))
    except (ConfigError, JournalError) as exc:
        _fail_config(exc)
    except RunFailed as exc:
        _print(exc.report, as_json=as_json)
        if isinstance(exc.__cause__, AuthError):
            _fail_config(exc.__cause__)
        typer.echo(f"doorfix: the run could not complete: {printable(str(exc))}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    except UnresolvedError as exc:
        typer.echo(f"doorfix: {printable(redactor.redact(str(exc)))}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    _print(report, as_json=as_json)


@app.command()
def run(
    ctx: typer.Context,
    playbook: Annotated[str, typer.Argument(help="door-logs, aca-rejections or license-renewal.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Diagnose and plan; change nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    since: Annotated[
        datetime | None, typer.Option(help="Read feeds from this time (UTC) instead of the cursor.")
    ] = None,
) -> None:
    """Run one playbook once and print its report."""
    if playbook not in PLAYBOOKS:
        _fail_config(
            ConfigError(f"choose one of {', '.join(PLAYBOOKS)}", key=f"PLAYBOOK {playbook}")
        )
    loaded = _loaded(ctx)
    start = utc(since) if since else None
    _run_command(
        lambda agent, progress: run_once(
            agent, playbook, dry_run=dry_run, since=start, progress=progress
        ),
        loaded,
        as_json,
    )


@app.command()
def diagnose(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", help="ACA user id.")],
    lock: Annotated[str | None, typer.Option("--lock", help="CLP lock id.")] = None,
    door: Annotated[str | None, typer.Option("--door", help="Cloud door id.")] = None,
    fix: Annotated[bool, typer.Option("--fix", help="Apply the remedy (guards apply).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """The ticket path: every runbook check for one user at one lock or door."""
    if (lock is None) == (door is None):
        _fail_config(ConfigError("give exactly one of --lock and --door", key="--lock/--door"))
    loaded = _loaded(ctx)
    _run_command(
        lambda agent, _progress: diagnose_ticket(agent, user, lock_id=lock, door_id=door, fix=fix),
        loaded,
        as_json,
    )


register_reports(app)
register_daemon(app)
register_approvals(app)


def main() -> None:
    """Console-script entry point."""
    app()
