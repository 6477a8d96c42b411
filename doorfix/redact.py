"""The one redactor of vendor text: every form a secret takes on the wire, and every token.

A vendor may quote a request back (its Authorization header, its form body) in an error body
or a field; that text reaches exceptions, log lines, reports and the journal. Everything
doorfix writes from a vendor's text passes :meth:`SecretRedactor.redact` first. The redactor
knows each secret as configured and as sent: raw, URL-encoded (``%2F`` and form ``+``),
JSON-escaped, and inside HTTP Basic credentials (base64 of ``id:secret``); and each access
token the HTTP layer obtained, added as it is obtained.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import deque
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "***"
#: shorter values are not redacted: replacing ``ab`` everywhere would garble every text
MIN_SECRET_LENGTH = 4
#: access tokens remembered (the newest): older ones expired long ago, and a daemon fetching
#: one every few minutes must not grow its redactor for ever
MAX_TOKENS = 64

_CREDENTIALS = re.compile(r"(?i)\b(bearer|basic)(\s+|%20|\+)[A-Za-z0-9._~+/=%-]+")


def wire_forms(secret: str, *, user: str | None = None) -> set[str]:
    """The texts ``secret`` becomes on the wire (``user``: the Basic-auth user it goes with)."""
    found = {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }
    found.add(json.dumps(quote_plus(secret))[1:-1])
    if user is not None:
        pair = f"{user}:{secret}".encode()
        encoded = base64.b64encode(pair).decode()
        found |= {encoded, quote(encoded, safe=""), encoded.rstrip("=")}
    return {f for f in found if len(f) >= MIN_SECRET_LENGTH}


class SecretRedactor:
    """Replaces every known secret form and ``Bearer``/``Basic`` credentials with ``***``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._tokens: deque[str] = deque(maxlen=MAX_TOKENS)
        self._forms: tuple[str, ...] = ()
        self._pattern: re.Pattern[str] | None = None

    def add(self, secret: str, *, user: str | None = None) -> None:
        """Know a configured ``secret`` in all its forms (``user``: its Basic-auth user)."""
        if len(secret) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            self._secrets |= wire_forms(secret, user=user)
            self._compile()

    def add_token(self, token: str) -> None:
        """Know an access token just obtained (the newest :data:`MAX_TOKENS` are kept)."""
        if len(token) < MIN_SECRET_LENGTH or token in self._tokens:
            return
        with self._lock:
            self._tokens.append(token)
            self._compile()

    def _compile(self) -> None:
        forms = set(self._secrets)
        for token in self._tokens:
            forms |= wire_forms(token)
        # longest first: a form that contains another is replaced whole
        self._forms = tuple(sorted(forms, key=lambda f: (-len(f), f)))
        self._pattern = re.compile("|".join(re.escape(f) for f in self._forms))

    def add_all(self, secrets: Iterable[str]) -> None:
        """Know each of ``secrets``."""
        for secret in secrets:
            self.add(secret)

    def redact(self, text: str) -> str:
        """``text`` with every known secret form and any bearer/basic credential replaced."""
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        return _CREDENTIALS.sub(lambda m: f"{m.group(1)} {REDACTED}", text)

    def redact_optional(self, text: str | None) -> str | None:
        """:meth:`redact`, passing None through."""
        return None if text is None else self.redact(text)

    def scrub(self, value: object) -> object:
        """``value`` with every string in it redacted (dicts, lists and tuples recursed)."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.scrub(v) for v in value)
        return value

    def __repr__(self) -> str:
        return f"SecretRedactor({len(self._forms)} forms)"
