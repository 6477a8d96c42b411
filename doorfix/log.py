"""structlog configuration and the processor that keeps secrets out of every log line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

from doorfix.redact import REDACTED, SecretRedactor
from doorfix.text import printable

__all__ = ["REDACTED", "Redactor", "configure_logging", "redact_text"]

#: Keys whose values are never logged, whatever they hold.
SECRET_KEYS = frozenset(
    {
        "authorization",
        "access_token",
        "token",
        "client_secret",
        "secret",
        "api_key",
        "password",
        "clp-continuation-token",
    }
)


def _redactor(secrets: Iterable[str] | SecretRedactor) -> SecretRedactor:
    if isinstance(secrets, SecretRedactor):
        return secrets
    redactor = SecretRedactor()
    redactor.add_all(s for s in secrets if s)
    return redactor


def redact_text(text: str, secrets: Iterable[str] | SecretRedactor = ()) -> str:
    """Return ``text`` with bearer/basic credentials and every wire form of ``secrets`` replaced."""
    return _redactor(secrets).redact(text)


class Redactor:
    """structlog processor: drop secret keys and scrub secret values from every field.

    Given the :class:`~doorfix.redact.SecretRedactor` of the HTTP layer, it also knows every
    token obtained since; given plain values, every wire form of each.
    """

    def __init__(self, secrets: Iterable[str] | SecretRedactor = ()) -> None:
        self._redactor = _redactor(secrets)

    def scrub(self, value: Any) -> Any:
        """Return ``value`` with secrets removed, recursing into containers."""
        if isinstance(value, str):
            return self._redactor.redact(value)
        if isinstance(value, dict):
            return {
                k: (REDACTED if str(k).lower() in SECRET_KEYS else self.scrub(v))
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return type(value)(self.scrub(v) for v in value)
        if isinstance(value, BaseException):
            return self._redactor.redact(str(value))
        return value

    def __call__(
        self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key in list(event_dict):
            if key.lower() in SECRET_KEYS:
                event_dict[key] = REDACTED
            else:
                event_dict[key] = self.scrub(event_dict[key])
        return event_dict


def configure_logging(
    *,
    level: str = "info",
    json: bool | None = None,
    stream: TextIO | None = None,
    secrets: Iterable[str] | SecretRedactor = (),
) -> None:
    """Configure structlog once: console renderer on a TTY, JSON lines otherwise, on stderr.

    ``secrets``: values to redact, or the redactor the HTTP layer adds its tokens to. The
    console renderer shows control characters from data escaped (``\\x1b``), never raw.
    """
    out = stream or sys.stderr
    use_json = (not out.isatty()) if json is None else json
    processors: list[Any] = []
    renderer: Any = structlog.processors.JSONRenderer()
    if not use_json:
        processors.append(_printable_values)
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            Redactor(secrets),
            *processors,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def _printable_values(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Escape control and bidi characters in every text value (JSON lines escape their own)."""
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = printable(value, keep_newlines=True)
        elif not isinstance(value, int | float | bool) and value is not None:
            event_dict[key] = printable(repr(value), keep_newlines=True)
    return event_dict
