"""``doorfix config check``: is this configuration ready to run?

One line per check, ``ok`` or ``FAIL`` with the reason: the config file (every key), the
``[report]`` settings, each secret's presence, the notification URLs, the journal path, and
for each system one cheap authenticated read (ACA: the first page of centers; the cloud: the
project of the first center; CLP: the sites). Calls retry little, so an unreachable system
fails in seconds, not after the run's full retry budget. No secret ever reaches a line.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import apprise
import httpx
from pydantic import SecretStr

from doorfix.agent.cli.session import IN_MEMORY, Loaded, load
from doorfix.agent.config import (
    ENV_ESCALATE_URLS,
    ENV_NOTIFY_URLS,
    ENV_SECRETS,
    HttpSection,
    Secrets,
    Settings,
)
from doorfix.agent.journal.store import OUTCOMES, Journal
from doorfix.agent.runtime import Urls, build_clients_for, sandbox_secrets
from doorfix.agent.sinks import parse_sinks
from doorfix.clock import Clock, SystemClock
from doorfix.connectors.factory import Clients
from doorfix.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    JournalError,
    PermanentError,
    TransientError,
)
from doorfix.log import redact_text

#: attempts per probe call: one retry, so a blip passes and a dead system fails fast
PROBE_ATTEMPTS = 2
#: seconds a probe may spend retrying
PROBE_RETRY_SECONDS = 5.0
#: seconds one system's probe may take in all (a server that accepts and never answers)
PROBE_TIMEOUT = 60.0
#: centers read at most while looking for one with a cloud project
_CENTERS_READ = 100
#: a project id no cloud holds: a business error to it still proves the token works
_NO_PROJECT = "doorfix-config-check"


@dataclass(frozen=True)
class Check:
    """One check's verdict."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        """``ok   aca: ...`` or ``FAIL aca: ...``."""
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


def all_ok(checks: list[Check]) -> bool:
    """True when no check failed."""
    return all(c.ok for c in checks)


async def run_checks(
    config: Path | None,
    *,
    env: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[Check]:
    """Every check, in order; ``transport`` routes the system probes (tests)."""
    source = os.environ if env is None else env
    try:
        loaded = load(config)
    except ConfigError as exc:
        return [Check("config", False, str(exc)), *_secret_checks(source), *_sink_checks(source)]
    checks = [_config_check(loaded), _report_check(loaded.settings)]
    secrets: dict[str, str] = {}
    if loaded.embedded:
        checks.append(Check("secrets", True, "embedded sandbox: its built-in credentials"))
        values = sandbox_secrets()
        secrets = dict(zip(ENV_SECRETS, values.values(), strict=True))
    else:
        checks += _secret_checks(source)
        secrets = {s: source.get(var, "").strip() for s, var in ENV_SECRETS.items()}
    checks.extend(_sink_checks(source))
    checks.append(_journal_check(loaded, clock or SystemClock()))
    hidden = tuple(v for v in secrets.values() if v)
    probes = await _system_checks(loaded, secrets, clock or SystemClock(), transport)
    checks += probes
    return [Check(c.name, c.ok, redact_text(c.detail, hidden)) for c in checks]


# local checks --------------------------------------------------------------------------------


def _config_check(loaded: Loaded) -> Check:
    if loaded.path is None:
        return Check(
            "config",
            True,
            "no config file found (searched ./doorfix.toml, "
            "$XDG_CONFIG_HOME/doorfix/config.toml, /etc/doorfix/config.toml): "
            "the embedded sandbox with every default",
        )
    where = "embedded sandbox" if loaded.embedded else "real systems"
    return Check("config", True, f"{loaded.path} (from {loaded.source}): every key valid ({where})")


def _report_check(settings: Settings) -> Check:
    unknown = sorted(set(settings.report.notify_on) - OUTCOMES)
    if unknown:
        return Check(
            "report",
            False,
            f"[report] notify_on: unknown outcome(s) {', '.join(unknown)}; "
            f"choose from {', '.join(sorted(OUTCOMES))}",
        )
    from apscheduler.triggers.cron import CronTrigger  # noqa: PLC0415 - only to validate

    try:
        CronTrigger.from_crontab(settings.report.digest_cron)
    except ValueError as exc:
        return Check("report", False, f"[report] digest_cron: not a cron expression: {exc}")
    return Check(
        "report",
        True,
        f"notify on {', '.join(settings.report.notify_on) or 'nothing'}; "
        f"digest at '{settings.report.digest_cron}' UTC",
    )


def _secret_checks(env: Mapping[str, str]) -> list[Check]:
    return [
        Check(f"secret {var}", True, "set")
        if env.get(var, "").strip()
        else Check(f"secret {var}", False, "missing: set this environment variable")
        for var in ENV_SECRETS.values()
    ]


def _sink_checks(env: Mapping[str, str]) -> list[Check]:
    return [_notify_check(env), _notify_check(env, ENV_ESCALATE_URLS, "escalate")]


def _notify_check(
    env: Mapping[str, str], variable: str = ENV_NOTIFY_URLS, name: str = "notify"
) -> Check:
    sinks = parse_sinks(env.get(variable))
    if not sinks:
        return Check(name, True, f"no sinks ({variable} is not set)")
    for sink in sinks:
        if not apprise.Apprise().add(sink.url):
            return Check(name, False, f"{variable} sink {sink.label}: not a URL apprise knows")
    return Check(name, True, f"{len(sinks)} sink(s): {', '.join(s.label for s in sinks)}")


def _journal_check(loaded: Loaded, clock: Clock) -> Check:
    where = loaded.journal_path
    if where == IN_MEMORY:
        return Check("journal", True, "in memory (embedded sandbox): nothing is kept")
    path = Path(where)
    if not path.exists():
        parent = path.parent
        if not parent.is_dir():
            return Check("journal", False, f"{where}: directory {parent} does not exist")
        if not os.access(parent, os.W_OK | os.X_OK):
            return Check("journal", False, f"{where}: directory {parent} is not writable")
        return Check("journal", True, f"{where} does not exist yet; it will be created")
    try:
        with Journal(path, clock=clock) as journal:
            problem = journal.check()
    except JournalError as exc:
        return Check("journal", False, str(exc))
    if problem:
        return Check("journal", False, problem)
    return Check("journal", True, f"{where}: readable, writable, integrity ok")


# the systems ---------------------------------------------------------------------------------


def _cheap(section: HttpSection) -> HttpSection:
    return section.model_copy(
        update={
            "retry_attempts": min(section.retry_attempts, PROBE_ATTEMPTS),
            "retry_max_seconds": min(section.retry_max_seconds, PROBE_RETRY_SECONDS),
        }
    )


@asynccontextmanager
async def _clients(
    loaded: Loaded,
    secrets: Mapping[str, str],
    clock: Clock,
    transport: httpx.AsyncBaseTransport | None,
) -> AsyncIterator[Clients]:
    s = loaded.settings
    settings = s.model_copy(
        update={"cloud": _cheap(s.cloud), "aca": _cheap(s.aca), "clp": _cheap(s.clp)}
    )
    urls: Urls | None = None
    if loaded.embedded and transport is None:
        from doorfix.sandbox.api.app import create_app  # noqa: PLC0415
        from doorfix.sandbox.api.transport import IN_PROCESS_ROOT, SandboxTransport  # noqa: PLC0415
        from doorfix.sandbox.faults.api import ApiFaults  # noqa: PLC0415 - only when embedded
        from doorfix.sandbox.scenarios.registry import build_scenario  # noqa: PLC0415

        world = build_scenario(s.sandbox.scenario, seed=s.sandbox.seed, clock=clock)
        transport = SandboxTransport(create_app(world, api_faults=ApiFaults(s.sandbox.seed)))
        urls = Urls.under(IN_PROCESS_ROOT)
    # a missing secret is sent as a placeholder no server accepts; its probe is skipped anyway
    values = Secrets(
        cloud_client_secret=SecretStr(secrets.get("cloud") or "-"),
        aca_api_key=SecretStr(secrets.get("aca") or "-"),
        clp_client_secret=SecretStr(secrets.get("clp") or "-"),
    )
    clients = build_clients_for(settings, values, clock=clock, urls=urls, transport=transport)
    try:
        yield clients
    finally:
        await clients.aclose()


async def _system_checks(
    loaded: Loaded,
    secrets: Mapping[str, str],
    clock: Clock,
    transport: httpx.AsyncBaseTransport | None,
) -> list[Check]:
    urls = Urls.from_settings(loaded.settings)
    where = {"aca": urls.aca, "cloud": urls.cloud, "clp": urls.clp}
    if loaded.embedded and transport is None:
        where = {system: "embedded sandbox" for system in where}
    out: list[Check] = []
    async with _clients(loaded, secrets, clock, transport) as clients:
        project: list[str] = []

        async def aca() -> str:
            first = None
            seen = 0
            async for center in clients.aca.iter_centers():
                first = first or center
                seen += 1
                if center.cloud_project_id:
                    project.append(center.cloud_project_id)
                if project or seen >= _CENTERS_READ:
                    break
            if first is None:
                return "authenticated; no center listed"
            return f"authenticated; read center {first.id} ({first.name})"

        async def cloud() -> str:
            if project:
                info = await clients.cloud.get_project_info(project[0])
                return f"authenticated; read project {info.project_id}"
            try:
                await clients.cloud.get_project_info(_NO_PROJECT)
            except PermanentError as exc:
                if exc.status is not None and exc.status < 300:
                    # a business error (HTTP 200) came back: the token was accepted
                    return "authenticated (no project known from ACA to read)"
                raise
            return "authenticated"

        async def clp() -> str:
            async for site in clients.clp.iter_sites():
                return f"authenticated; read site {site.id}"
            return "authenticated; no site listed"

        probes: dict[str, Callable[[], Awaitable[str]]] = {"aca": aca, "cloud": cloud, "clp": clp}
        for system, probe in probes.items():
            if not secrets.get(system):
                out.append(Check(system, False, f"not checked: {ENV_SECRETS[system]} is missing"))
                continue
            out.append(await _probe(system, where[system], probe))
    return out


async def _probe(system: str, url: str, probe: Callable[[], Awaitable[str]]) -> Check:
    try:
        detail = await asyncio.wait_for(probe(), timeout=PROBE_TIMEOUT)
    except AuthError as exc:
        return Check(system, False, f"credentials refused ({ENV_SECRETS[system]}): {exc}")
    except TransientError as exc:
        return Check(system, False, f"unreachable at {url}: {exc}")
    except ConnectorError as exc:
        return Check(system, False, f"{url}: {exc}")
    except TimeoutError:
        return Check(system, False, f"unreachable at {url}: no answer within {PROBE_TIMEOUT:g} s")
    return Check(system, True, f"{url}: {detail}")
