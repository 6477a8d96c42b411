"""The one error tree of doorfix.

Every failure that crosses a module boundary is one of these; nothing above
``doorfix.connectors`` ever sees an httpx exception.

    DoorfixError
     ├── ConnectorError            a call to cloud, ACA or CLP failed
     │    ├── TransientError       timeouts, resets, 429, 5xx, CLP 2203: worth retrying
     │    ├── PermanentError       other 4xx and business errors: retrying will not help
     │    ├── AuthError            bad credentials, or a second 401 after a fresh token
     │    └── ContractError        a response that does not match ../shared/contract
     ├── ConfigError               bad config file, key or missing secret (exit code 2)
     └── JournalError              the SQLite journal cannot be read or written

Connector errors carry ``system``, ``endpoint``, ``status`` and the vendor ``code`` so a
report or a log line names the place. Messages never contain secrets: the HTTP layer builds
them from the endpoint name and the vendor's error code and message, and passes that vendor
text through its :class:`~doorfix.redact.SecretRedactor` (:meth:`ConnectorError.scrub`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

System = Literal["cloud", "aca", "clp"]


class DoorfixError(Exception):
    """Base class of every doorfix error."""


class Interrupted(DoorfixError):
    """A stop was asked for (SIGTERM): a wait ended at once, and no new work starts."""


class ConnectorError(DoorfixError):
    """A call to one of the three systems failed."""

    def __init__(
        self,
        message: str,
        *,
        system: System,
        endpoint: str,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        self.system = system
        self.endpoint = endpoint
        self.status = status
        self.code = code
        self.message = message
        #: the failed call was a write (set by the HTTP layer, and where a write's answer is
        #: decoded): a write whose answer is garbled, or a transient error the server may have
        #: sent after acting (``maybe_processed``), may have taken effect; only a re-read tells
        self.write = False
        super().__init__(str(self))

    def scrub(self, redact: Callable[[str], str]) -> None:
        """Pass the vendor's text (message and code) through ``redact``, in place."""
        self.message = redact(self.message)
        self.code = None if self.code is None else redact(self.code)
        self.args = (str(self),)

    def __str__(self) -> str:
        where = f"{self.system} {self.endpoint}"
        extra = []
        if self.status is not None:
            extra.append(f"status={self.status}")
        if self.code is not None:
            extra.append(f"code={self.code}")
        suffix = f" ({', '.join(extra)})" if extra else ""
        return f"{where}: {self.message}{suffix}"


class TransientError(ConnectorError):
    """A failure that may pass: timeout, dropped connection, 429, 5xx, CLP 2203."""

    def __init__(
        self,
        message: str,
        *,
        system: System,
        endpoint: str,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        maybe_processed: bool = True,
    ) -> None:
        #: seconds the server asked us to wait (Retry-After), if it said
        self.retry_after = retry_after
        #: False only when the server surely did not act (429, connect failure, CLP 2203),
        #: which is what makes retrying a non-idempotent write safe
        self.maybe_processed = maybe_processed
        super().__init__(message, system=system, endpoint=endpoint, status=status, code=code)


class WriteOutcomeUnknown(TransientError):
    """A write whose answer was lost and whose re-read failed too: it may have taken effect.

    The caller must neither claim it nor send it again; the next re-read settles it.
    """

    def __init__(
        self,
        message: str,
        *,
        system: System,
        endpoint: str,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, system=system, endpoint=endpoint, status=status, code=code)
        self.write = True


class PermanentError(ConnectorError):
    """A refusal that retrying will not change: a 4xx or a business error."""


class AuthError(ConnectorError):
    """Credentials were refused, or a fresh token was refused again."""


class ContractError(ConnectorError):
    """A response that does not match the contract; ``field`` names the offending field."""

    def __init__(
        self,
        message: str,
        *,
        system: System,
        endpoint: str,
        field: str | None = None,
        status: int | None = None,
    ) -> None:
        self.field = field
        super().__init__(message, system=system, endpoint=endpoint, status=status)

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} [field: {self.field}]" if self.field else base


class ConfigError(DoorfixError):
    """The configuration is unusable; ``key`` names the offending key or variable."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        self.key = key
        super().__init__(f"{key}: {message}" if key else message)


class JournalError(DoorfixError):
    """The journal could not be opened, read or written."""


class UnknownRecord(DoorfixError):
    """A person asked about an incident or action the journal does not hold (a 404)."""


class StateConflict(DoorfixError):
    """A person asked for what the record's state no longer allows: marked, ran or lapsed."""
