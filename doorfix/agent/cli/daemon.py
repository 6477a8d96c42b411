"""The ``daemon`` and ``demo`` commands; :func:`register` adds them to the ``doorfix`` app."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from doorfix.agent.cli.options import config_option, setup_logging
from doorfix.agent.cli.session import (
    IN_MEMORY,
    Loaded,
    load,
    log_redactor,
    notifier_for,
    open_agent,
    sandbox_notice,
)
from doorfix.agent.config import REMEDIES, config_path
from doorfix.agent.daemon.scheduler import run_daemon
from doorfix.agent.journal.connection import is_url
from doorfix.agent.journal.store import Journal
from doorfix.clock import AcceleratedClock, StoppableClock, SystemClock
from doorfix.errors import ConfigError, JournalError
from doorfix.text import printable

#: DESIGN.md's exit code for bad config, credentials or journal
EXIT_CONFIG = 2


def _fail(exc: Exception) -> NoReturn:
    typer.echo(f"doorfix: {printable(str(exc))}", err=True)
    raise typer.Exit(EXIT_CONFIG)


def no_config(command: str, *, offers_sandbox: bool) -> str:
    """What ``doorfix COMMAND`` says when it has no config: where one is looked for, and the
    embedded sandbox only where the command can run on it."""
    said = (
        f"doorfix {command} needs a config and found none: pass --config FILE, set "
        "$DOORFIX_CONFIG, or put one at ./doorfix.toml, $XDG_CONFIG_HOME/doorfix/config.toml "
        "or /etc/doorfix/config.toml (see config.example.toml)"
    )
    if offers_sandbox:
        said += "; or pass --sandbox for a demo on the embedded sandbox"
    return said


def _loaded(ctx: typer.Context, command: str, *, sandbox: bool | None = None) -> Loaded:
    """The config of ``doorfix command``; ``sandbox``: its ``--sandbox`` (None: it has none)."""
    config = config_option(ctx)
    if not sandbox and config_path(config) is None:
        _fail(ConfigError(no_config(command, offers_sandbox=sandbox is not None), key="--config"))
    try:
        loaded = load(config)
    except ConfigError as exc:
        _fail(exc)
    return _embedded(loaded) if sandbox and not loaded.embedded else loaded


def _embedded(loaded: Loaded) -> Loaded:
    """``--sandbox`` with a config: its settings, on the embedded sandbox, in-memory journal."""
    settings = loaded.settings.model_copy(
        update={"sandbox": loaded.settings.sandbox.model_copy(update={"embedded": True})}
    )
    return Loaded(settings, embedded=True, journal_path=IN_MEMORY)


def daemon(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Diagnose and plan on schedule; change nothing.")
    ] = False,
    sandbox: Annotated[
        bool,
        typer.Option(
            "--sandbox",
            help="A demo on the embedded sandbox: no real system is read or changed.",
        ),
    ] = False,
    speed: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            help="Clock seconds per real second: the schedule, the digest and the guards' "
            "windows pass this much faster (tests and demos). Default 1, or [sandbox] speed.",
        ),
    ] = None,
) -> None:
    """Run every playbook on its schedule until SIGTERM; /healthz and /metrics on 127.0.0.1."""
    loaded = _loaded(ctx, "daemon", sandbox=sandbox)
    redactor = log_redactor(loaded)
    setup_logging(ctx, "info", secrets=redactor)
    sandbox_notice(loaded)

    # the embedded sandbox runs on an accelerated clock: its intervals pass that much faster
    if speed is None:
        speed = loaded.settings.sandbox.speed if loaded.embedded else 1.0
    # SIGTERM stops this clock: a run in a retry back-off or a poll stops waiting at once
    base = AcceleratedClock(SystemClock().now(), speed) if speed != 1.0 else SystemClock()
    clock = StoppableClock(base)
    notifier = notifier_for(loaded)

    async def go() -> None:
        async with open_agent(loaded, redactor=redactor, clock=clock) as agent:
            if agent.journal.dialect == "postgresql":
                # a fleet: procrastinate divides the work among the replicas sharing the journal
                from doorfix.agent.daemon.fleet import run_fleet_daemon  # noqa: PLC0415

                await run_fleet_daemon(
                    agent, dry_run=dry_run, speed=speed, notifier=notifier, redact=redactor
                )
            else:
                await run_daemon(
                    agent, dry_run=dry_run, speed=speed, notifier=notifier, redact=redactor
                )

    try:
        asyncio.run(go())
    except (ConfigError, JournalError) as exc:
        _fail(exc)


def fleet(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """The replicas sharing the PostgreSQL journal: heartbeats, what each works, the queue."""
    loaded = _loaded(ctx, "fleet")
    if not is_url(loaded.journal_path):
        _fail(
            ConfigError(
                "doorfix fleet needs a fleet's PostgreSQL journal; this config's journal is "
                "a SQLite file",
                key="[journal] url",
            )
        )
    from doorfix.agent.daemon.fleet import fleet_status  # noqa: PLC0415 - a fleet's only

    try:
        with Journal(loaded.journal_path, clock=SystemClock()) as journal:
            status = fleet_status(journal, shards=loaded.settings.shards)
    except JournalError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(status, sort_keys=True))
        return
    held = [
        f"{printable(scope)} by {printable(str(lock.get('holder')))}"
        for scope, lock in sorted(status["run_locks"].items())
    ]
    shards = status["shards"]
    divided = f"centers in {shards} shards, " if shards > 1 else ""
    typer.echo(
        f"journal {printable(status['journal'])}: {status['live']} live replica(s), "
        f"{divided}{status['queue_depth']} job(s) queued, run locks held: "
        f"{'; '.join(held) if held else 'none'}"
    )
    for r in status["replicas"]:
        state = "live" if r["live"] else "SILENT"
        working = _working(printable(r["working"]))
        typer.echo(
            f"  {printable(r['replica_id'])}  {state}  last heartbeat {r['heartbeat_at']}  "
            f"working: {working}"
        )


def _working(working: str) -> str:
    """A replica's runs as a person reads them: ``door-logs on the centers of shard 2/8``."""
    runs = []
    for run in filter(None, working.split("+")):
        playbook, _, shard = run.partition("@")
        runs.append(f"{playbook} on the centers of shard {shard}" if shard else playbook)
    return ", ".join(runs) or "idle"


def demo(
    ctx: typer.Context,
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
    setup_logging(ctx, "warning")
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
    app.command("fleet")(fleet)
