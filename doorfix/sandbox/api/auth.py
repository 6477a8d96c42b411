"""The sandbox's credentials and access tokens, which expire by the world's clock."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from doorfix.clock import Clock

TokenSystem = Literal["cloud", "clp"]

#: ``expires_in`` of a cloud token (seconds of clock time), as the contract answers it
CLOUD_TOKEN_TTL = 1800
#: ``expires_in`` of a CLP token
CLP_TOKEN_TTL = 3600
#: the one scope the CLP identity server grants
CLP_SCOPE = "user_api.full_access"


@dataclass(frozen=True, slots=True)
class SandboxCredentials:
    """What the sandbox accepts; the defaults are documented in docs/sandbox.md."""

    cloud_client_id: str = "doorfix-sandbox"
    cloud_client_secret: str = "sandbox-cloud-secret"  # noqa: S105 -- a published sandbox default
    aca_api_key: str = "sandbox-aca-key"
    clp_client_id: str = "doorfix-sandbox"
    clp_client_secret: str = "sandbox-clp-secret"  # noqa: S105 -- a published sandbox default

    def cloud_ok(self, client_id: str, client_secret: str) -> bool:
        """True when the cloud client credentials match."""
        return _same(client_id, self.cloud_client_id) and _same(
            client_secret, self.cloud_client_secret
        )

    def aca_ok(self, api_key: str) -> bool:
        """True when the ACA API key matches."""
        return _same(api_key, self.aca_api_key)

    def clp_ok(self, client_id: str, client_secret: str) -> bool:
        """True when the CLP client credentials match."""
        return _same(client_id, self.clp_client_id) and _same(client_secret, self.clp_client_secret)


@dataclass(frozen=True, slots=True)
class _Token:
    system: TokenSystem
    expires_at: datetime
    generation: int


class TokenStore:
    """Bearer tokens issued by the cloud and CLP token endpoints."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._tokens: dict[str, _Token] = {}

    def issue(self, system: TokenSystem, ttl: int, generation: int) -> str:
        """A new token for ``system`` valid for ``ttl`` seconds of clock time."""
        now = self._clock.now()
        # forget expired tokens so a long demo does not grow the table forever
        self._tokens = {k: t for k, t in self._tokens.items() if t.expires_at > now}
        token = f"{system}-{secrets.token_urlsafe(24)}"
        self._tokens[token] = _Token(system, now + timedelta(seconds=ttl), generation)
        return token

    def valid(self, system: TokenSystem, token: str | None, generation: int) -> bool:
        """True when ``token`` was issued by ``system``, is unexpired and not revoked."""
        if token is None:
            return False
        found = self._tokens.get(token)
        return (
            found is not None
            and found.system == system
            and found.generation == generation
            and self._clock.now() < found.expires_at
        )


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or None."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


def basic(authorization: str | None) -> tuple[str, str] | None:
    """``(user, password)`` of an ``Authorization: Basic …`` header, or None if malformed."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
