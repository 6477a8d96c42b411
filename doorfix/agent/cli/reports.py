"""The ``report``, ``history`` and ``config check`` commands; :func:`register` adds them.

    from doorfix.agent.cli.reports import register
    register(app)   # in doorfix/agent/cli/app.py, after ``app`` is defined

They read ``--config`` from the root callback's ``ctx.obj["config"]`` and exit with DESIGN.md's
codes: 0 done, 2 bad config, missing secret, unusable journal or a failed check.
"""

from __future__ import annotations

import asyncio
import os
import re
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from doorfix.agent.cli.checks import all_ok, run_checks
from doorfix.agent.cli.session import IN_MEMORY, Loaded, load, secrets_for
from doorfix.agent.config import ENV_NOTIFY_URLS
from doorfix.agent.journal.connection import is_url
from doorfix.agent.journal.store import Journal
from doorfix.agent.reports.history import render_history_json, render_history_text, subject_history
from doorfix.agent.reports.notify import parse_sinks
from doorfix.agent.reports.period import build_report
from doorfix.agent.reports.render import render, render_text
from doorfix.clock import SystemClock, utc
from doorfix.errors import ConfigError, JournalError
from doorfix.log import configure_logging
from doorfix.text import printable

#: DESIGN.md's exit code for bad config, credentials or journal
EXIT_CONFIG = 2
#: the report's period when ``--since`` is not given
DEFAULT_PERIOD = timedelta(days=7)

_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


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


def parse_since(text: str, now: datetime, *, key: str = "--since") -> datetime:
    """``24h``, ``7d``, ``2w``, ``90m`` before ``now``, or an ISO time (UTC if it has no zone)."""
    match = _DURATION.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return now - timedelta(**{_UNITS[unit]: amount})
    try:
        return utc(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))
    except ValueError:
        raise ConfigError(
            "expected a duration (24h, 7d, 2w) or an ISO time (2026-11-16T08:00Z)", key=key
        ) from None


def _fail(exc: Exception) -> NoReturn:
    typer.echo(f"doorfix: {printable(str(exc))}", err=True)
    raise typer.Exit(EXIT_CONFIG)


def _config_option(ctx: typer.Context) -> Path | None:
    root = ctx.find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    value = obj.get("config")
    return Path(value) if value else None


def _loaded(ctx: typer.Context) -> Loaded:
    try:
        return load(_config_option(ctx))
    except ConfigError as exc:
        _fail(exc)


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


def _open_journal(loaded: Loaded) -> Journal:
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
            )
        )
    try:
        return Journal(path, clock=SystemClock())
    except JournalError as exc:
        _fail(exc)


def report(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(help="Start of the period: 24h, 7d, 2w ago, or an ISO time. Default 7d."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="End of the period: an ISO time, or 24h, 7d ago. Default now."),
    ] = None,
    fmt: Annotated[
        ReportFormat, typer.Option("--format", "-f", help="text, markdown, html or json.")
    ] = ReportFormat.text,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """What doorfix fixed, what waits, and what needs a person, over a period."""
    loaded = _loaded(ctx)
    configure_logging(level="error", secrets=_redactions(loaded))
    now = SystemClock().now()
    try:
        end = parse_since(until, now, key="--until") if until else now
        start = parse_since(since, end) if since else end - DEFAULT_PERIOD
    except ConfigError as exc:
        _fail(exc)
    if start >= end:
        _fail(ConfigError("the period is empty: --since must come before --until", key="--since"))
    with _open_journal(loaded) as journal:
        period = build_report(
            journal,
            since=start,
            until=end,
            title=loaded.settings.report.title,
            redact=_redactions(loaded),
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
    if not subject:
        _fail(
            ConfigError(
                "give at least one of them", key="--user/--lock/--door/--personnel/--visitor"
            )
        )
    loaded = _loaded(ctx)
    configure_logging(level="error", secrets=_redactions(loaded))
    with _open_journal(loaded) as journal:
        found = subject_history(journal, subject, redact=_redactions(loaded))
    if fmt is HistoryFormat.json:
        typer.echo(render_history_json(found))
    else:
        render_history_text(found, Console())


def check(ctx: typer.Context) -> None:
    """Check the config, secrets, journal and that each system answers and authenticates."""
    config = _config_option(ctx)
    try:
        loaded = load(config)
    except ConfigError:
        loaded = None
    hidden = _redactions(loaded) if loaded is not None else ()
    configure_logging(level="critical", secrets=hidden)
    checks = asyncio.run(run_checks(config))
    for item in checks:
        typer.echo(printable(item.line()))
    if not all_ok(checks):
        raise typer.Exit(EXIT_CONFIG)


def register(app: typer.Typer) -> None:
    """Add ``report``, ``history`` and ``config check`` to the doorfix app."""
    app.command("report")(report)
    app.command("history")(history)
    config_app = typer.Typer(name="config", help="Check the configuration.", no_args_is_help=True)
    config_app.command("check")(check)
    app.add_typer(config_app, name="config")
