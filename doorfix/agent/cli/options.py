"""What every command shares: the root's options, logging set-up and how an error is told.

The root callback stores ``--config``, ``--log-level`` and ``--log-format`` in
``ctx.obj``; commands read them through :func:`config_option` and :func:`setup_logging`.
:func:`fail` prints an error as one line on stderr and, when the command was asked for JSON,
also as one JSON object on stdout (``{"error": …, "key": …, "exit_code": 2}``), then exits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn

import typer

from doorfix.errors import ConfigError
from doorfix.log import configure_logging
from doorfix.redact import SecretRedactor
from doorfix.text import printable

#: DESIGN.md's exit code for bad config, credentials, journal or input
EXIT_CONFIG = 2


class LogLevel(StrEnum):
    """``--log-level``."""

    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"
    critical = "critical"


class LogFormat(StrEnum):
    """``--log-format``: JSON lines, or the console renderer (the default on a terminal)."""

    json = "json"
    console = "console"


def root_obj(ctx: typer.Context) -> dict[str, Any]:
    """The root callback's ``ctx.obj`` (empty when a command runs without it, in tests)."""
    root = ctx.find_root()
    return root.obj if isinstance(root.obj, dict) else {}


def config_option(ctx: typer.Context) -> Path | None:
    """``--config`` as given to the root, or None."""
    value = root_obj(ctx).get("config")
    return Path(value) if value else None


def setup_logging(
    ctx: typer.Context, default: str, secrets: Iterable[str] | SecretRedactor = ()
) -> None:
    """Configure logging with the root's ``--log-level`` (else ``default``) and format."""
    obj = root_obj(ctx)
    level = obj.get("log_level") or default
    fmt = obj.get("log_format")
    configure_logging(
        level=str(level), json=None if fmt is None else fmt == LogFormat.json, secrets=secrets
    )


def error_object(message: str, *, key: str | None, exit_code: int) -> str:
    """The JSON form of an error: one object, on one line."""
    return json.dumps({"error": message, "key": key, "exit_code": exit_code})


def fail(exc: Exception, *, as_json: bool = False, exit_code: int = EXIT_CONFIG) -> NoReturn:
    """Tell the error (stderr; and stdout as JSON when ``as_json``) and exit ``exit_code``."""
    message = printable(str(exc))
    if as_json:
        key = exc.key if isinstance(exc, ConfigError) else None
        typer.echo(error_object(message, key=key, exit_code=exit_code))
    typer.echo(f"doorfix: {message}", err=True)
    raise typer.Exit(exit_code)
