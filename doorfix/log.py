"""structlog configuration and the processor that keeps secrets out of every log line."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "***"

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

_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with bearer/basic credentials and each of ``secrets`` replaced."""
    out = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    for secret in secrets:
        if len(secret) >= 4 and secret in out:
            out = out.replace(secret, REDACTED)
    return out


class Redactor:
    """structlog processor: drop secret keys and scrub secret values from every field."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = tuple(s for s in secrets if s)

    def scrub(self, value: Any) -> Any:
        """Return ``value`` with secrets removed, recursing into containers."""
        if isinstance(value, str):
            return redact_text(value, self._secrets)
        if isinstance(value, dict):
            return {
                k: (REDACTED if str(k).lower() in SECRET_KEYS else self.scrub(v))
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return type(value)(self.scrub(v) for v in value)
        if isinstance(value, BaseException):
            return redact_text(str(value), self._secrets)
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
    secrets: Iterable[str] = (),
) -> None:
    """Configure structlog once: console renderer on a TTY, JSON lines otherwise, on stderr."""
    out = stream or sys.stderr
    use_json = (not out.isatty()) if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            Redactor(secrets),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
