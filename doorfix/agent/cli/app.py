"""The ``doorfix`` command line: a thin layer over the agent and the sandbox."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from typer._click import exceptions as click_errors  # typer 0.2x vendors click

from doorfix import __version__
from doorfix.agent.cli.approvals import register as register_approvals
from doorfix.agent.cli.daemon import register as register_daemon
from doorfix.agent.cli.options import (
    LogFormat,
    LogLevel,
    config_option,
    error_object,
    fail,
    setup_logging,
)
from doorfix.agent.cli.reports import register as register_reports
from doorfix.agent.cli.sandbox_args import (
    SCENARIO_HELP,
    check_port,
    check_scenario,
    did_you_mean,
    parse_params,
)
from doorfix.agent.cli.session import (
    Loaded,
    load,
    log_redactor,
    notifier_for,
    open_agent,
    sandbox_notice,
)
from doorfix.agent.cli.times import FORMS, parse_time
from doorfix.agent.config import ENV_NOTIFY_URLS
from doorfix.agent.engine.collect_aca import UnresolvedError
from doorfix.agent.engine.progress import Progress, progress_display
from doorfix.agent.engine.report import SANDBOX_NOTICE, RunReport, render_table
from doorfix.agent.engine.run import PLAYBOOKS, RunFailed, run_once
from doorfix.agent.engine.state import Agent
from doorfix.agent.engine.ticket import TicketReport, diagnose_ticket, render_ticket
from doorfix.agent.reports.notify import notify_run
from doorfix.clock import SystemClock
from doorfix.errors import AuthError, ConfigError, JournalError
from doorfix.sandbox.scenarios.registry import SCENARIOS
from doorfix.text import printable

app = typer.Typer(
    name="doorfix",
    help="Automated remediation agent for door-access failures.",
    no_args_is_help=True,
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
        typer.Option(
            "--config",
            "-c",
            help="Config file (TOML). Default: $DOORFIX_CONFIG, else the first of "
            "./doorfix.toml, $XDG_CONFIG_HOME/doorfix/config.toml, /etc/doorfix/config.toml; "
            "none: the embedded sandbox.",
        ),
    ] = None,
    log_level: Annotated[
        LogLevel | None,
        typer.Option("--log-level", help="Log lines at this level and above (stderr)."),
    ] = None,
    log_format: Annotated[
        LogFormat | None,
        typer.Option("--log-format", help="json lines or console; default: console on a terminal."),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Print version."),
    ] = False,
) -> None:
    """Automated remediation agent for door-access failures."""
    ctx.obj = {"config": config, "log_level": log_level, "log_format": log_format}


@app.command(
    help="Serve the simulated cloud, ACA and CLP on 127.0.0.1, seeded with a scenario."
    f"\n\nScenarios: {SCENARIO_HELP}."
)
def sandbox(
    scenario: Annotated[
        str, typer.Option(help=f"Scenario to seed: {', '.join(SCENARIOS)}.")
    ] = "demo",
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 8600,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same world.")] = 0,
    speed: Annotated[
        float,
        typer.Option(min=0.001, help="Clock speed: 1 is real time, 60 runs an hour a minute."),
    ] = 1.0,
    start: Annotated[
        str | None, typer.Option(help=f"Simulated start time: {FORMS}. Default: now.")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", "-p", help="Scenario parameter KEY=VALUE (repeatable); see each scenario."
        ),
    ] = None,
) -> None:
    from doorfix.sandbox.api.server import serve  # noqa: PLC0415 - keep CLI start-up light

    try:
        name = check_scenario(scenario)
        params = parse_params(name, param or [])
        begin = parse_time(start, SystemClock().now(), option="--start") if start else None
        check_port(port)
    except ConfigError as exc:
        _fail_config(exc)
    try:
        serve(name, port=port, seed=seed, speed=speed, start=begin, params=params)
    except OSError as exc:  # the port taken between the check and the build
        _fail_config(ConfigError(f"cannot listen: {exc.strerror}", key="--port"))


def _loaded(ctx: typer.Context, *, as_json: bool = False) -> Loaded:
    try:
        return load(config_option(ctx))
    except ConfigError as exc:
        fail(exc, as_json=as_json)


def _fail_config(exc: Exception) -> NoReturn:
    typer.echo(f"doorfix: {printable(str(exc))}", err=True)
    raise typer.Exit(EXIT_CONFIG)


def _print(report: RunReport, *, as_json: bool) -> None:
    if as_json:
        typer.echo(report.to_json())
    elif isinstance(report, TicketReport):
        render_ticket(report, Console())
    else:
        render_table(report, Console())


#: an id the ticket path could not resolve -> the option that gave it
_TICKET_OPTIONS = {
    "user_id": "--user",
    "center_id": "--user",
    "lock_id": "--lock",
    "door_id": "--door",
}


def _notify(report: RunReport, loaded: Loaded) -> None:
    """``--notify``: send the run's message (never about the embedded sandbox); say what went."""
    notifier = notifier_for(loaded)
    if notifier is None:
        typer.echo(f"doorfix: not notified: {SANDBOX_NOTICE}", err=True)
        return
    delivery = asyncio.run(notify_run(report, loaded.settings, notifier=notifier))
    if delivery is None:
        why = (
            f"{ENV_NOTIFY_URLS} is not set"
            if not notifier.enabled
            else "no outcome of [report] notify_on"
        )
        typer.echo(f"doorfix: not notified: {why}", err=True)
        return
    if delivery.sent:
        typer.echo(f"doorfix: notified {', '.join(delivery.sent)}", err=True)
    if delivery.failed:
        typer.echo(f"doorfix: notification failed: {', '.join(delivery.failed)}", err=True)


def _run_command(
    ctx: typer.Context,
    work: Callable[[Agent, Progress], Awaitable[RunReport]],
    loaded: Loaded,
    as_json: bool,
    *,
    notify: bool = False,
) -> None:
    """Run ``work`` with an agent; print the report; map failures to DESIGN's exit codes."""

    redactor = log_redactor(loaded)
    sandbox_notice(loaded)

    async def go(progress: Progress) -> RunReport:
        async with open_agent(loaded, redactor=redactor) as agent:
            return await work(agent, progress)

    try:
        # on a terminal only: on a pipe the display would only add blank lines to stderr
        with progress_display(enabled=False if as_json else None) as progress:
            # inside the display: rich swaps stderr for a proxy the log lines must go through
            setup_logging(ctx, "warning", secrets=redactor)
            report = asyncio.run(go(progress))
    except (ConfigError, JournalError) as exc:
        fail(exc, as_json=as_json)
    except RunFailed as exc:
        _print(exc.report, as_json=as_json)
        if notify:
            _notify(exc.report, loaded)
        if isinstance(exc.__cause__, AuthError):
            _fail_config(exc.__cause__)
        typer.echo(f"doorfix: the run could not complete: {printable(str(exc))}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    except UnresolvedError as exc:
        # only the ticket path raises it: an id given on the command line resolves to nothing
        option = _TICKET_OPTIONS.get(exc.field, exc.field)
        fail(ConfigError(redactor.redact(str(exc)), key=option), as_json=as_json)
    _print(report, as_json=as_json)
    if notify:
        _notify(report, loaded)


@app.command()
def run(
    ctx: typer.Context,
    playbook: Annotated[str, typer.Argument(help="door-logs, aca-rejections or license-renewal.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Diagnose and plan; change nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    since: Annotated[
        str | None,
        typer.Option(help=f"Read feeds from this time instead of the cursor: {FORMS}."),
    ] = None,
    notify: Annotated[
        bool,
        typer.Option(
            "--notify",
            help="Send the run's message to DOORFIX_NOTIFY_URLS (as the daemon does).",
        ),
    ] = False,
) -> None:
    """Run one playbook once and print its report."""
    try:
        if playbook not in PLAYBOOKS:
            raise ConfigError(  # noqa: TRY301 - one way out for every bad input
                f"choose one of {', '.join(PLAYBOOKS)}{did_you_mean(playbook, PLAYBOOKS)}",
                key=f"PLAYBOOK {playbook}",
            )
        start = parse_time(since, SystemClock().now(), option="--since") if since else None
    except ConfigError as exc:
        fail(exc, as_json=as_json)
    loaded = _loaded(ctx, as_json=as_json)
    _run_command(
        ctx,
        lambda agent, progress: run_once(
            agent, playbook, dry_run=dry_run, since=start, progress=progress
        ),
        loaded,
        as_json,
        notify=notify,
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
        fail(
            ConfigError("give exactly one of --lock and --door", key="--lock/--door"),
            as_json=as_json,
        )
    loaded = _loaded(ctx, as_json=as_json)
    _run_command(
        ctx,
        lambda agent, _progress: diagnose_ticket(agent, user, lock_id=lock, door_id=door, fix=fix),
        loaded,
        as_json,
    )


register_reports(app)
register_daemon(app)
register_approvals(app)


def _usage_line(exc: click_errors.ClickException) -> str:
    """``--speed: …``: the option named before the message, in one printable line."""
    message = exc.format_message().replace("Value error, ", "")
    param = getattr(exc, "param", None)
    names = getattr(param, "opts", None) or ([param.name] if param is not None else [])
    if names and not message.startswith(("Invalid value for", "Missing", "No such")):
        message = f"{names[0]}: {message}"
    return printable(" ".join(message.split()))


def _wants_json(args: list[str]) -> bool:
    """Whether the command line asks for JSON (``--json``, ``--format json``, ``-f json``)."""
    pairs = zip(args, [*args[1:], ""], strict=True)
    return (
        "--json" in args
        or "--format=json" in args
        or any(a in {"--format", "-f"} and b == "json" for a, b in pairs)
    )


#: root options a command also takes after its name (``doorfix report --log-level info``)
ROOT_OPTIONS = ("--config", "--log-level", "--log-format")


def hoist_root_options(args: list[str]) -> list[str]:
    """``args`` with every root option moved before the command, so each command takes them."""
    hoisted: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        name = arg.split("=", 1)[0]
        if name in ROOT_OPTIONS:
            if "=" in arg or i + 1 >= len(args):
                hoisted.append(arg)
                i += 1
            else:
                hoisted += args[i : i + 2]
                i += 2
            continue
        rest.append(arg)
        i += 1
    return [*hoisted, *rest]


def main() -> None:
    """Console-script entry point: a usage error is one line on stderr and exit code 2."""
    try:
        code = app(args=hoist_root_options(sys.argv[1:]), standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:
        typer.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        code = EXIT_CONFIG
    except click_errors.ClickException as exc:  # an unknown option, a bad value, no argument
        line = _usage_line(exc)
        if _wants_json(sys.argv[1:]):
            typer.echo(error_object(line, key=None, exit_code=EXIT_CONFIG))
        typer.echo(f"doorfix: {line}", err=True)
        code = EXIT_CONFIG
    except typer.Abort:
        code = 130
    sys.exit(code if isinstance(code, int) else EXIT_OK)
