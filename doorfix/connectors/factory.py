"""Build the three clients from plain settings: URLs, ids, secrets, timeouts, limits.

The only place that creates an ``httpx.AsyncClient``: one per system, with a timeout on every
call, a connection pool sized to the rate limit's concurrency, and the system's auth. Tests and
the embedded sandbox pass a ``transport`` to route every request in process.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

import httpx
from pydantic import SecretStr

from doorfix import __version__
from doorfix.clock import Clock, SystemClock
from doorfix.connectors import aca, cloud, clp
from doorfix.connectors._client import ClientBase
from doorfix.connectors._http import (
    MAX_RESPONSE_BYTES,
    Auth,
    CallStats,
    ClientCredentialsAuth,
    HttpLayer,
    RateLimit,
    RetryPolicy,
    StaticKeyAuth,
    VendorErrorReader,
)
from doorfix.connectors.aca import AcaClient
from doorfix.connectors.cloud import CloudClient
from doorfix.connectors.clp import ClpClient
from doorfix.errors import System
from doorfix.redact import SecretRedactor

#: CLP's token scope (``contract/clp.md``)
CLP_SCOPE = "user_api.full_access"


@dataclass(frozen=True)
class HttpSettings:
    """Per-system HTTP behaviour: the whole-call deadline, retries, rate limit, size limit.

    ``trust_env`` lets httpx follow the environment's proxy variables (off: a bearer key must
    never go to a proxy nobody configured); ``proxy`` is an explicit proxy URL.
    """

    timeout: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limit: RateLimit = field(default_factory=RateLimit)
    max_response_bytes: int = MAX_RESPONSE_BYTES
    trust_env: bool = False
    proxy: str | None = None


@dataclass(frozen=True)
class CloudSettings:
    """``[cloud]``: the API's base URL, the client id and its secret."""

    base_url: str
    client_id: str
    client_secret: SecretStr
    http: HttpSettings = field(default_factory=HttpSettings)


@dataclass(frozen=True)
class AcaSettings:
    """``[aca]``: the API's base URL and its static API key."""

    base_url: str
    api_key: SecretStr
    http: HttpSettings = field(default_factory=HttpSettings)


@dataclass(frozen=True)
class ClpSettings:
    """``[clp]``: the API's and the identity server's base URLs, the client id and secret."""

    base_url: str
    identity_url: str
    client_id: str
    client_secret: SecretStr
    http: HttpSettings = field(default_factory=HttpSettings)


def _layer(
    system: System,
    base_url: str,
    *,
    auth: Auth,
    reader: VendorErrorReader,
    http: HttpSettings,
    clock: Clock,
    transport: httpx.AsyncBaseTransport | None,
    redactor: SecretRedactor,
) -> HttpLayer:
    concurrency = max(1, http.rate_limit.concurrency)
    client = httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(http.timeout),
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        # only what the HTTP layer inflates itself, within max_response_bytes
        headers={
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",
            "User-Agent": f"doorfix/{__version__}",
        },
        transport=transport,
        trust_env=http.trust_env,
        proxy=http.proxy if transport is None else None,
    )
    return HttpLayer(
        system=system,
        client=client,
        auth=auth,
        vendor_error=reader,
        retry=http.retry,
        rate_limit=http.rate_limit,
        clock=clock,
        redactor=redactor,
        deadline=http.timeout,
        max_response_bytes=http.max_response_bytes,
    )


def _join(base_url: str, path: str) -> str:
    return f"{base_url.rstrip('/')}/{path.lstrip('/')}"


def build_cloud(
    settings: CloudSettings,
    *,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    redactor: SecretRedactor | None = None,
) -> CloudClient:
    """A CloudClient with OAuth client credentials posted as a form to ``/oauth/token``."""
    redactor = redactor or SecretRedactor()
    redactor.add(settings.client_secret.get_secret_value())
    auth = ClientCredentialsAuth(
        _join(settings.base_url, "/oauth/token"), settings.client_id, settings.client_secret
    )
    layer = _layer(
        "cloud",
        settings.base_url,
        auth=auth,
        reader=cloud.vendor_error,
        http=settings.http,
        clock=clock or SystemClock(),
        transport=transport,
        redactor=redactor,
    )
    return CloudClient(layer)


def build_aca(
    settings: AcaSettings,
    *,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    redactor: SecretRedactor | None = None,
) -> AcaClient:
    """An AcaClient with its static API key as the bearer token."""
    redactor = redactor or SecretRedactor()
    redactor.add(settings.api_key.get_secret_value())
    layer = _layer(
        "aca",
        settings.base_url,
        auth=StaticKeyAuth(settings.api_key),
        reader=aca.vendor_error,
        http=settings.http,
        clock=clock or SystemClock(),
        transport=transport,
        redactor=redactor,
    )
    return AcaClient(layer)


def build_clp(
    settings: ClpSettings,
    *,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    redactor: SecretRedactor | None = None,
) -> ClpClient:
    """A ClpClient with client credentials in Basic auth to ``{identity_url}/connect/token``."""
    redactor = redactor or SecretRedactor()
    redactor.add(settings.client_secret.get_secret_value(), user=settings.client_id)
    auth = ClientCredentialsAuth(
        _join(settings.identity_url, "/connect/token"),
        settings.client_id,
        settings.client_secret,
        basic=True,
        scope=CLP_SCOPE,
    )
    layer = _layer(
        "clp",
        settings.base_url,
        auth=auth,
        reader=clp.vendor_error,
        http=settings.http,
        clock=clock or SystemClock(),
        transport=transport,
        redactor=redactor,
    )
    return ClpClient(layer)


@dataclass(frozen=True)
class Clients:
    """The three clients; ``async with`` closes them all."""

    cloud: CloudClient
    aca: AcaClient
    clp: ClpClient
    #: knows the three secrets and every token obtained; for every vendor text written
    redactor: SecretRedactor = field(default_factory=SecretRedactor)

    async def __aenter__(self) -> Clients:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def by_system(self) -> dict[str, ClientBase]:
        """Each client under its system's name."""
        return {"cloud": self.cloud, "aca": self.aca, "clp": self.clp}

    def share_pace(self, slot: Callable[[str, datetime, float], Awaitable[datetime]]) -> None:
        """Pace each system's requests by a fleet's shared slots: ``slot(system, now, gap)``."""
        for system, client in self.by_system().items():
            client.share_pace(partial(slot, system))

    def stats(self) -> dict[str, CallStats]:
        """Call counters per system."""
        return {system: client.stats for system, client in self.by_system().items()}

    async def aclose(self) -> None:
        """Close every client, even when one of them fails to close."""
        try:
            await self.cloud.aclose()
        finally:
            try:
                await self.aca.aclose()
            finally:
                await self.clp.aclose()


def build_clients(
    cloud_settings: CloudSettings,
    aca_settings: AcaSettings,
    clp_settings: ClpSettings,
    *,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    redactor: SecretRedactor | None = None,
) -> Clients:
    """The three clients, sharing one clock (and one transport, when given).

    Each client closes the transport it was given, so a shared one is closed three times:
    pass one that allows it (the in-process sandbox transport does) or build them one by one.
    """
    shared = clock or SystemClock()
    one = redactor or SecretRedactor()
    return Clients(
        cloud=build_cloud(cloud_settings, clock=shared, transport=transport, redactor=one),
        aca=build_aca(aca_settings, clock=shared, transport=transport, redactor=one),
        clp=build_clp(clp_settings, clock=shared, transport=transport, redactor=one),
        redactor=one,
    )
