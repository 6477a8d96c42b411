"""Building an :class:`~doorfix.agent.engine.run.Agent`: from the config, or on the sandbox.

The embedded default runs the agent against the sandbox in the same process: the sandbox's
own (public, fake) credentials are used and no environment secret is needed, because nothing
leaves the process. Against real systems the secrets come from the environment only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from doorfix.agent.config import ENV_ESCALATE_URLS, HttpSection, Secrets, Settings
from doorfix.agent.engine.report import Target
from doorfix.agent.engine.state import Agent
from doorfix.agent.journal.store import Journal
from doorfix.agent.sinks import Notifier
from doorfix.clock import Clock
from doorfix.connectors._http import RateLimit, RetryPolicy
from doorfix.connectors.factory import (
    AcaSettings,
    Clients,
    CloudSettings,
    ClpSettings,
    HttpSettings,
    build_clients,
)
from doorfix.playbooks.policy import PlanPolicy
from doorfix.redact import SecretRedactor


@dataclass(frozen=True)
class Urls:
    """Where the three systems answer."""

    cloud: str
    aca: str
    clp: str
    clp_identity: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Urls:
        """The URLs of the config."""
        return cls(
            cloud=str(settings.cloud.base_url).rstrip("/"),
            aca=str(settings.aca.base_url).rstrip("/"),
            clp=str(settings.clp.base_url).rstrip("/"),
            clp_identity=str(settings.clp.identity_url).rstrip("/"),
        )

    @classmethod
    def under(cls, root: str) -> Urls:
        """The sandbox's URLs under one root (its path prefixes)."""
        root = root.rstrip("/")
        return cls(f"{root}/cloud", f"{root}/aca", f"{root}/clp", f"{root}/clp-identity")


def _http(section: HttpSection, settings: Settings) -> HttpSettings:
    proxy = settings.http.proxy
    return HttpSettings(
        max_response_bytes=section.max_response_bytes,
        trust_env=settings.http.trust_env,
        proxy=str(proxy) if proxy else None,
        timeout=section.timeout_seconds,
        retry=RetryPolicy(attempts=section.retry_attempts, max_elapsed=section.retry_max_seconds),
        rate_limit=RateLimit(
            per_second=section.requests_per_second, concurrency=section.concurrency
        ),
    )


def build_clients_for(
    settings: Settings,
    secrets: Secrets,
    *,
    clock: Clock,
    urls: Urls | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    redactor: SecretRedactor | None = None,
) -> Clients:
    """The three clients from the config (``urls`` overrides where they point)."""
    where = urls or Urls.from_settings(settings)
    return build_clients(
        CloudSettings(
            base_url=where.cloud,
            client_id=settings.cloud.client_id,
            client_secret=secrets.cloud_client_secret,
            http=_http(settings.cloud, settings),
        ),
        AcaSettings(
            base_url=where.aca, api_key=secrets.aca_api_key, http=_http(settings.aca, settings)
        ),
        ClpSettings(
            base_url=where.clp,
            identity_url=where.clp_identity,
            client_id=settings.clp.client_id,
            client_secret=secrets.clp_client_secret,
            http=_http(settings.clp, settings),
        ),
        clock=clock,
        transport=transport,
        redactor=redactor,
    )


def sandbox_secrets(
    cloud: str = "sandbox-cloud-secret",
    aca: str = "sandbox-aca-key",
    clp: str = "sandbox-clp-secret",
) -> Secrets:
    """The sandbox's fake credentials (its defaults): for the embedded sandbox only."""
    return Secrets(
        cloud_client_secret=SecretStr(cloud),
        aca_api_key=SecretStr(aca),
        clp_client_secret=SecretStr(clp),
    )


def build_agent(
    settings: Settings,
    secrets: Secrets,
    *,
    clock: Clock,
    journal: Journal | None = None,
    urls: Urls | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    redactor: SecretRedactor | None = None,
    target: Target = "live",
    escalation: Notifier | None = None,
) -> Agent:
    """An Agent with its clients, journal and the playbooks' policy from the config.

    ``redactor``: the one the log lines go through, so they learn each token obtained.
    ``target``: ``sandbox`` for the embedded sandbox (every output says so, nothing is sent);
    ``escalation``: where escalations go (see :func:`escalation_sinks`).
    """
    clients = build_clients_for(
        settings, secrets, clock=clock, urls=urls, transport=transport, redactor=redactor
    )
    journal = journal or Journal(settings.journal.target, clock=clock)
    if journal.pace is not None:
        # replicas of a fleet act at once: each system's rate limit is the fleet's, not theirs
        clients.share_pace(journal.pace.turn)
    return Agent(
        settings=settings,
        clients=clients,
        journal=journal,
        clock=clock,
        policy=PlanPolicy.from_guards(
            settings.guards, holiday_hours=settings.remedies.holiday_windows()
        ),
        target=target,
        escalation=None if target == "sandbox" else escalation,
    )


def escalation_sinks(
    settings: Settings, secrets: Secrets, *, env: Mapping[str, str] | None = None
) -> Notifier:
    """The escalation channels of ``DOORFIX_ESCALATE_URLS``; the doorfix secrets scrubbed."""
    values = (
        secrets.cloud_client_secret.get_secret_value(),
        secrets.aca_api_key.get_secret_value(),
        secrets.clp_client_secret.get_secret_value(),
    )
    return Notifier.from_env(settings, env=env, redact=values, variable=ENV_ESCALATE_URLS)
