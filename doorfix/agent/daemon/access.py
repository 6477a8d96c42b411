"""Who may use the supervisors' console: tokens from the environment, sessions, CSRF.

``DOORFIX_CONSOLE_VIEW_TOKEN`` lets a person read the console, ``DOORFIX_CONSOLE_APPROVE_TOKEN``
lets them read and write (mark handled, approve, refuse). Both come only from the environment
and are compared in constant time. With no view token the pages are open to read, and the
daemon refuses to listen anywhere but loopback; with no approve token nothing can be written.

A person signs in once with a token (``/login``) and gets a session cookie (HttpOnly,
SameSite=Strict) that names a random session id, never the token; each session has its own
CSRF token, which every form carries and every write checks. A script may send
``Authorization: Bearer TOKEN`` instead: no cookie rides along, so no CSRF token is needed.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from doorfix.errors import ConfigError

VIEW_TOKEN_VAR = "DOORFIX_CONSOLE_VIEW_TOKEN"  # noqa: S105 - a variable's name
APPROVE_TOKEN_VAR = "DOORFIX_CONSOLE_APPROVE_TOKEN"  # noqa: S105 - a variable's name
#: the session cookie's name
COOKIE = "doorfix_console"
#: sessions kept at most (the oldest is forgotten past this)
MAX_SESSIONS = 1000


class Role(StrEnum):
    """What a request may do."""

    VIEWER = "viewer"
    APPROVER = "approver"


@dataclass(frozen=True)
class Session:
    """A signed-in person: their role, the name they gave, their CSRF token."""

    role: Role
    name: str
    csrf: str


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConsoleAccess:
    """The console's tokens and its signed-in sessions (in memory: a restart signs out)."""

    def __init__(self, *, view_token: str | None, approve_token: str | None) -> None:
        self._view = view_token or None
        self._approve = approve_token or None
        self._sessions: dict[str, Session] = {}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ConsoleAccess:
        """The tokens of :data:`VIEW_TOKEN_VAR` and :data:`APPROVE_TOKEN_VAR` (empty: unset)."""
        source = os.environ if env is None else env
        return cls(
            view_token=source.get(VIEW_TOKEN_VAR, "").strip() or None,
            approve_token=source.get(APPROVE_TOKEN_VAR, "").strip() or None,
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """The tokens, for the log and page redactor."""
        return tuple(t for t in (self._view, self._approve) if t)

    @property
    def open_to_read(self) -> bool:
        """True when no view token is set: anyone who reaches the page may read it."""
        return self._view is None

    @property
    def writable(self) -> bool:
        """True when an approve token is set: someone can sign in to write."""
        return self._approve is not None

    def check_bind(self, host: str) -> None:
        """Refuse a non-loopback address unless both tokens are set."""
        if is_loopback(host):
            return
        missing = [
            name
            for name, value in ((VIEW_TOKEN_VAR, self._view), (APPROVE_TOKEN_VAR, self._approve))
            if value is None
        ]
        if missing:
            raise ConfigError(
                f"the console would listen on {host}, beyond loopback, without "
                f"{' and '.join(missing)}: set them, or bind 127.0.0.1",
                key="[daemon] host",
            )

    def role_of(self, token: str) -> Role | None:
        """The role a presented token grants (constant-time compares), or None."""
        given = token.encode()
        approver = self._approve is not None and hmac.compare_digest(given, self._approve.encode())
        viewer = self._view is not None and hmac.compare_digest(given, self._view.encode())
        if approver:
            return Role.APPROVER
        if viewer:
            return Role.VIEWER
        return None

    def sign_in(self, token: str, name: str) -> tuple[str, Session] | None:
        """A new session for a valid token, or None."""
        role = self.role_of(token)
        if role is None:
            return None
        if len(self._sessions) >= MAX_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))
        sid = secrets.token_urlsafe(32)
        session = Session(role, name, secrets.token_urlsafe(32))
        self._sessions[sid] = session
        return sid, session

    def session(self, sid: str | None) -> Session | None:
        """The session of a cookie value, or None."""
        return None if not sid else self._sessions.get(sid)

    def sign_out(self, sid: str | None) -> None:
        """Forget a session."""
        if sid:
            self._sessions.pop(sid, None)

    @staticmethod
    def csrf_ok(session: Session, presented: str | None) -> bool:
        """True when a form's CSRF token is its session's (constant time)."""
        return presented is not None and hmac.compare_digest(
            presented.encode(), session.csrf.encode()
        )
