"""The ``report``, ``history`` and ``config check`` commands; :func:`register` adds them.

    from doorfix.agent.cli.reports import register
    register(app)   # in doorfix/agent/cli/app.py, after ``app`` is defined

They read ``--config`` from the root callback's ``ctx.obj["config"]`` and exit with DESIGN.md's
codes: 0 done, 2 bad config, missing secret, unusable journal or a failed check.
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from doorfix.agent.cli.checks import all_ok, run_checks
from doorfix.agent.cli.options import config_option, fail, setup_logging
from doorfix.agent.cli.session import IN_MEMORY, Loaded, load, sandbox_notice, secrets_for
from doorfix.agent.cli.times import FORMS, parse_time
from doorfix.agent.config import ENV_NOTIFY_URLS, find_config
from doorfix.agent.journal.connection import is_url
from doorfix.agent.journal.store import Journal
from doorfix.agent.reports.history import render_history_json, render_history_text, subject_history
from doorfix.agent.reports.period import build_report
from doorfix.agent.reports.render import render, render_text
from doorfix.agent.sinks import parse_sinks
from doorfix.clock import SystemClock
from doorfix.errors import ConfigError, JournalError
from doorfix.text import printable

#: DESIGN.md's exit code for bad config, credentials or journal
EXIT_CONFIG = 2
#: the report's period when ``--since`` is not given
DEFAULT_PERIOD = timedelta(days=7)


class ReportFormat(StrEnum):
    """Formats of ``doorfix report``."""

    text = "text"
    markdown = "markdown"
    html = "html"
    json = "json"


class HistoryFormat(StrEnum):
    """Formats of ``doorfix history``."""

    text = "text"
    json = "json"


def _fail(exc: Exception, as_json: bool = False) -> NoReturn:
    fail(exc, as_json=as_json)


def _loaded(ctx: typer.Context, as_json: bool = False) -> Loaded:
    try:
        return load(config_option(ctx))
    except ConfigError as exc:
        _fail(exc, as_json)


def _redactions(loaded: Loaded) -> tuple[str, ...]:
    """Every secret value known to this process, to scrub from what is printed."""
    try:
        values = list(secrets_for(loaded).values())
    except ConfigError:
        values = []
    values += [s for sink in parse_sinks(_notify_env()) for s in sink.secrets]
    return tuple(values)


def _notify_env() -> str | None:
    return os.environ.get(ENV_NOTIFY_URLS)


def _open_journal(loaded: Loaded, as_json: bool = False) -> Journal:
    sandbox_notice(loaded)  # what the journal holds happened in the sandbox's world
    path = loaded.journal_path
    if path == IN_MEMORY:
        typer.echo(
            "doorfix: the embedded sandbox keeps no journal between commands; "
            "set [journal] path in a config file to keep one",
            err=True,
        )
    elif not is_url(path) and not Path(path).exists():
        _fail(
            ConfigError(
                f"no journal at {path}: doorfix has not run with this config yet",
                key="[journal] path",
            ),
            as_json,
        )
    try:
        # a reader never writes: it works on a journal it may only read (a manager's access)
        return Journal(path, clock=SystemClock(), read_only=True)
    except JournalError as exc:
        _fail(exc, as_json)


#: a period whose start is not before its end
EMPTY_PERIOD = ConfigError("the period is empty: --since must come before --until", key="--since")


def report(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(help=f"Start of the period: {FORMS}. Default: 7 days before --until."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            help=f"End of the period: {FORMS}. Default: now, or the journal's newest record "
            "if a clock ahead of this one wrote it."
        ),
    ] = None,
    fmt: Annotated[
        ReportFormat, typer.Option("--format", "-f", help="text, markdown, html or json.")
    ] = ReportFormat.text,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """What doorfix fixed, what waits, and what needs a person, over a period."""
    as_json = fmt is ReportFormat.json and output is None
    loaded = _loaded(ctx, as_json)
    setup_logging(ctx, "error", secrets=_redactions(loaded))
    now = SystemClock().now()
    try:
        end = parse_time(until, now, option="--until") if until else None
        begin = parse_time(since, now, option="--since") if since else None
    except ConfigError as exc:
        _fail(exc, as_json)
    if begin is not None and end is not None and begin >= end:
        _fail(EMPTY_PERIOD, as_json)
    with _open_journal(loaded, as_json) as journal:
        if end is None:
            # up to now, and to whatever a clock ahead of this one wrote (the embedded
            # sandbox's accelerated clock, a replica's): the newest run is in its report
            end = max(now, journal.newest_at() or now)
        start = begin if begin is not None else end - DEFAULT_PERIOD
        if start >= end:
            _fail(EMPTY_PERIOD, as_json)
        period = build_report(
            journal,
            since=start,
            until=end,
            title=loaded.settings.report.title,
            redact=_redactions(loaded),
            target="sandbox" if loaded.embedded else "live",
        )
    if output is None and fmt is ReportFormat.text:
        render_text(period, Console())
        return
    text = render(period, fmt.value)
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        _fail(ConfigError(f"cannot write: {exc.strerror}", key=f"--output {output}"))
    typer.echo(f"doorfix: wrote the {fmt.value} report to {output}", err=True)


def history(  # noqa: PLR0917 - typer declares options as parameters
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", help="ACA user id.")] = None,
    lock: Annotated[str | None, typer.Option("--lock", help="CLP lock id.")] = None,
    door: Annotated[str | None, typer.Option("--door", help="Cloud door id.")] = None,
    personnel: Annotated[
        str | None, typer.Option("--personnel", help="Cloud personnel id.")
    ] = None,
    visitor: Annotated[str | None, typer.Option("--visitor", help="Cloud visitor id.")] = None,
    fmt: Annotated[
        HistoryFormat, typer.Option("--format", "-f", help="text or json.")
    ] = HistoryFormat.text,
    since: Annotated[
        str | None, typer.Option(help=f"Only incidents seen from this time: {FORMS}.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help=f"Only incidents seen up to this time: {FORMS}.")
    ] = None,
) -> None:
    """Every incident and action the journal holds for a user, lock, door, person or visitor."""
    given = {
        "user_id": user,
        "lock_id": lock,
        "door_id": door,
        "personnel_id": personnel,
        "visitor_id": visitor,
    }
    subject = {k: v for k, v in given.items() if v}
    as_json = fmt is HistoryFormat.json
    if not subject:
        _fail(
            ConfigError(
                "give at least one of them", key="--user/--lock/--door/--personnel/--visitor"
            ),
            as_json,
        )
    now = SystemClock().now()
    try:
        start = parse_time(since, now, option="--since") if since else None
        end = parse_time(until, now, option="--until") if until else None
    except ConfigError as exc:
        _fail(exc, as_json)
    loaded = _loaded(ctx, as_json)
    setup_logging(ctx, "error", secrets=_redactions(loaded))
    with _open_journal(loaded, as_json) as journal:
        found = subject_history(
            journal, subject, redact=_redactions(loaded), since=start, until=end
        )
    if fmt is HistoryFormat.json:
        typer.echo(render_history_json(found))
    else:
        render_history_text(found, Console())


def check(
    ctx: typer.Context,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the checks as one JSON object.")
    ] = False,
) -> None:
    """Check the config, secrets, journal and that each system answers and authenticates.

    The first line names the config file used and how it was found (or that none was).
    """
    config = config_option(ctx)
    try:
        loaded: Loaded | None = load(config)
    except ConfigError:
        loaded = None
    hidden = _redactions(loaded) if loaded is not None else ()
    setup_logging(ctx, "critical", secrets=hidden)
    checks = asyncio.run(run_checks(config))
    path, source = find_config(config)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "ok": all_ok(checks),
                    "config": None if path is None else str(path),
                    "config_source": source,
                    "checks": [
                        {"name": c.name, "ok": c.ok, "detail": printable(c.detail)} for c in checks
                    ],
                }
            )
        )
    else:
        for item in checks:
            typer.echo(printable(item.line()))
    if not all_ok(checks):
        if as_json:
            failed = next(c for c in checks if not c.ok)
            typer.echo(f"doorfix: {printable(failed.name)}: {printable(failed.detail)}", err=True)
        raise typer.Exit(EXIT_CONFIG)


def register(app: typer.Typer) -> None:
    """Add ``report``, ``history`` and ``config check`` to the doorfix app."""
    app.command("report")(report)
    app.command("history")(history)
    config_app = typer.Typer(name="config", help="Check the configuration.", no_args_is_help=True)
    config_app.command("check")(check)
    app.add_typer(config_app, name="config")
