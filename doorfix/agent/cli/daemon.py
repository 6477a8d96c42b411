"""The ``daemon`` and ``demo`` commands; :func:`register` adds them to the ``doorfix`` app."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from doorfix.agent.cli.session import Loaded, load, log_redactor, open_agent
from doorfix.agent.config import REMEDIES
from doorfix.agent.daemon.scheduler import run_daemon
from doorfix.errors import ConfigError, JournalError
from doorfix.log import configure_logging
from doorfix.text import printable

#: DESIGN.md's exit code for bad config, credentials or journal
EXIT_CONFIG = 2


def _fail(exc: Exception) -> NoReturn:
    typer.echo(f"doorfix: {printable(str(exc))}", err=True)
    raise typer.Exit(EXIT_CONFIG)


def _loaded(ctx: typer.Context) -> Loaded:
    config: Path | None = ctx.obj["config"] if ctx.obj else None
    try:
        return load(config)
    except ConfigError as exc:
        _fail(exc)


def daemon(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Diagnose and plan on schedule; change nothing.")
    ] = False,
) -> None:
    """Run every playbook on its schedule until SIGTERM; /healthz and /metrics on 127.0.0.1."""
    loaded = _loaded(ctx)
    redactor = log_redactor(loaded)
    configure_logging(level="info", secrets=redactor)

    # the embedded sandbox runs on an accelerated clock: its intervals pass that much faster
    speed = loaded.settings.sandbox.speed if loaded.embedded else 1.0

    async def go() -> None:
        async with open_agent(loaded, redactor=redactor) as agent:
            await run_daemon(agent, dry_run=dry_run, speed=speed, redact=redactor)

    try:
        asyncio.run(go())
    except (ConfigError, JournalError) as exc:
        _fail(exc)


def demo(
    seconds: Annotated[
        float, typer.Option(min=1, help="Stop after this many real seconds at most.")
    ] = 60.0,
    speed: Annotated[float, typer.Option(min=1, help="Simulated seconds per real second.")] = 120.0,
    console: Annotated[
        bool,
        typer.Option(
            "--console",
            help="Serve the supervisors' console, print its address, run the whole --seconds.",
        ),
    ] = False,
    approve: Annotated[
        list[str] | None,
        typer.Option(
            "--approve",
            help="Supervised mode: this remedy waits for approval (repeat for more).",
        ),
    ] = None,
) -> None:
    """The daemon fixing the sandbox's demo world over loopback HTTP: no config, no secrets."""
    from doorfix.agent.cli.demo import run_demo  # noqa: PLC0415 - the sandbox loads only for the demo

    wanted = tuple(approve or ())
    unknown = sorted(set(wanted) - set(REMEDIES))
    if unknown:
        _fail(
            ConfigError(
                f"unknown remedy {', '.join(unknown)}; known: {', '.join(REMEDIES)}",
                key="--approve",
            )
        )
    configure_logging(level="warning")
    try:
        asyncio.run(
            run_demo(
                seconds=seconds,
                speed=speed,
                console=Console(),
                with_console=console,
                approve=wanted,
            )
        )
    except ConfigError as exc:
        _fail(exc)


def register(app: typer.Typer) -> None:
    """Add ``daemon`` and ``demo`` to the ``doorfix`` app (its callback sets ``--config``)."""
    app.command("daemon")(daemon)
    app.command("demo")(demo)
