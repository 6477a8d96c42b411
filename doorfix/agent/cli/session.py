"""Opening an agent for a command: config, secrets, clock, journal, and the embedded sandbox."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import structlog
import typer

from doorfix.agent.config import (
    Secrets,
    Settings,
    find_config,
    load_secrets,
    load_settings,
)
from doorfix.agent.engine.report import SANDBOX_NOTICE
from doorfix.agent.engine.state import Agent
from doorfix.agent.journal.store import Journal
from doorfix.agent.runtime import Urls, build_agent, escalation_sinks, sandbox_secrets
from doorfix.agent.sinks import Notifier
from doorfix.clock import AcceleratedClock, Clock, SystemClock
from doorfix.errors import ConfigError
from doorfix.redact import SecretRedactor

log = structlog.get_logger("doorfix.session")

#: The journal of the embedded sandbox when no config names one: the world is new each time.
IN_MEMORY = ":memory:"


@dataclass(frozen=True)
class Loaded:
    """The configuration a command runs with."""

    settings: Settings
    embedded: bool
    journal_path: str
    #: the config file read, or None (no file found: the embedded sandbox)
    path: Path | None = None
    #: how it was found: ``--config``, ``$DOORFIX_CONFIG``, ``./doorfix.toml …``
    source: str = "no config file found"


def load(config: Path | None) -> Loaded:
    """Load the config (see :func:`find_config`); with no file at all, the embedded sandbox."""
    path, source = find_config(config)
    if path is None:
        settings = Settings.model_validate({"sandbox": {"embedded": True}})
        return Loaded(settings, embedded=True, journal_path=IN_MEMORY, source=source)
    settings = load_settings(path)
    return Loaded(
        settings, settings.sandbox.embedded, str(settings.journal.path), path=path, source=source
    )


def secrets_for(loaded: Loaded) -> Secrets:
    """The sandbox's fake credentials when embedded; else the environment's secrets."""
    return sandbox_secrets() if loaded.embedded else load_secrets()


def log_redactor(loaded: Loaded) -> SecretRedactor:
    """A redactor knowing the command's secrets in every wire form (none when unusable)."""
    redactor = SecretRedactor()
    with contextlib.suppress(ConfigError):  # open_agent names the variable
        secrets = secrets_for(loaded)
        redactor.add(secrets.cloud_client_secret.get_secret_value())
        redactor.add(secrets.aca_api_key.get_secret_value())
        # CLP's secret also travels inside Basic credentials
        redactor.add(
            secrets.clp_client_secret.get_secret_value(), user=loaded.settings.clp.client_id
        )
    return redactor


def notifier_for(loaded: Loaded) -> Notifier | None:
    """The sinks of ``DOORFIX_NOTIFY_URLS``, the secrets scrubbed; None on the embedded sandbox."""
    if loaded.embedded:
        return None
    redact: list[str] = []
    with contextlib.suppress(ConfigError):  # open_agent names the variable
        secrets = secrets_for(loaded)
        redact += [
            secrets.cloud_client_secret.get_secret_value(),
            secrets.aca_api_key.get_secret_value(),
            secrets.clp_client_secret.get_secret_value(),
        ]
    return Notifier.from_env(loaded.settings, redact=redact)


def sandbox_notice(loaded: Loaded) -> None:
    """On the embedded sandbox, say so on stderr: nothing real was read or changed."""
    if loaded.embedded:
        typer.echo(SANDBOX_NOTICE, err=True)


@asynccontextmanager
async def open_agent(
    loaded: Loaded, *, clock: Clock | None = None, redactor: SecretRedactor | None = None
) -> AsyncIterator[Agent]:
    """An agent for one command; closes its clients and journal on the way out.

    ``redactor``: the log lines' (see :func:`log_redactor`), which learns each token obtained.
    """
    settings = loaded.settings
    secrets = secrets_for(loaded)
    if loaded.embedded:
        from doorfix.sandbox.api.app import create_app  # noqa: PLC0415
        from doorfix.sandbox.api.transport import IN_PROCESS_ROOT, SandboxTransport  # noqa: PLC0415
        from doorfix.sandbox.faults.api import ApiFaults  # noqa: PLC0415 - only when embedded
        from doorfix.sandbox.scenarios.registry import build_scenario  # noqa: PLC0415

        sim = clock or AcceleratedClock(SystemClock().now(), settings.sandbox.speed)
        world = build_scenario(settings.sandbox.scenario, seed=settings.sandbox.seed, clock=sim)
        app = create_app(world, api_faults=ApiFaults(settings.sandbox.seed))
        log.info(
            "embedded_sandbox", scenario=settings.sandbox.scenario, speed=settings.sandbox.speed
        )
        agent = build_agent(
            settings,
            secrets,
            clock=sim,
            journal=Journal(loaded.journal_path, clock=sim),
            urls=Urls.under(IN_PROCESS_ROOT),
            transport=SandboxTransport(app),
            redactor=redactor,
            target="sandbox",
        )
    else:
        real = clock or SystemClock()
        agent = build_agent(
            settings,
            secrets,
            clock=real,
            journal=Journal(loaded.journal_path, clock=real),
            redactor=redactor,
            escalation=escalation_sinks(settings, secrets),
        )
    try:
        yield agent
    finally:
        try:
            await agent.clients.aclose()
        finally:
            agent.journal.close()
