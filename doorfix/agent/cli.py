"""The ``doorfix`` command line: a thin layer over the agent and the sandbox."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from doorfix import __version__
from doorfix.errors import ConfigError

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
    from doorfix.sandbox.server import serve  # noqa: PLC0415 - keep CLI start-up light

    try:
        params = _params(param or [])
    except ConfigError as exc:
        typer.echo(f"doorfix: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    serve(scenario, port=port, seed=seed, speed=speed, start=start, params=params)


def main() -> None:
    """Console-script entry point."""
    app()
