"""Where doorfix sends what a person must read: apprise sinks, the one way out.

The run notification and the daily digest (``DOORFIX_NOTIFY_URLS``) and the escalations to
vendor support (``DOORFIX_ESCALATE_URLS``) all go through :class:`Notifier`. The URLs embed
tokens and passwords, so a URL is never logged: a sink is named by its position and scheme,
plus its host for the schemes whose host is a plain address (mail and webhooks). A sink that
fails is logged once as ``notify_failed`` and never raises; every message is scrubbed of the
doorfix secrets and of the sinks' own credentials before it leaves.

Nothing is ever sent about the embedded sandbox: its world is simulated, and a message about
it would read as news about the real systems (callers check :attr:`RunReport.target`, the
agent holds no escalation sink when embedded).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

import apprise
import structlog

from doorfix.agent.config import ENV_NOTIFY_URLS, Settings
from doorfix.log import redact_text

log = structlog.get_logger("doorfix.notify")

Kind = Literal["info", "success", "warning", "failure"]

#: schemes whose host is an address, not a token, so it may be named in a log line
_PLAIN_HOST = frozenset({"mailto", "mailtos", "json", "jsons", "xml", "xmls", "form", "forms"})
#: query parameters whose value is a credential
_SECRET_PARAMS = frozenset({"pass", "password", "token", "key", "apikey", "api_key", "secret"})
#: path segments this long with a digit are treated as tokens (webhook paths carry them)
_TOKEN_SEGMENT = 8
#: seconds one sink may take before it counts as failed
SEND_TIMEOUT = 30.0
#: apprise logs through one process-wide logger; a capture must not see another send's lines
_APPRISE_LOG = threading.Lock()


@dataclass(frozen=True)
class Sink:
    """One apprise URL; ``label`` is the only part of it that may be logged."""

    index: int
    scheme: str
    label: str
    url: str = field(repr=False)
    secrets: tuple[str, ...] = field(repr=False, default=())


def parse_sinks(value: str | None) -> list[Sink]:
    """The sinks of a space-separated list of apprise URLs."""
    sinks = []
    for index, url in enumerate((value or "").split(), start=1):
        scheme, sep, _ = url.partition("://")
        scheme = scheme.lower() if sep else "?"
        label = f"#{index} {scheme}"
        host = _host(url)
        if scheme in _PLAIN_HOST and host:
            label += f"://{host}"
        sinks.append(Sink(index, scheme, label, url, _url_secrets(url)))
    return sinks


def _host(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    return f"{parts.hostname}:{port}" if port else parts.hostname or ""


def _token_like(part: str) -> bool:
    # a token mixes letters and digits; a plain word (a path like /doorfix/incidents) must
    # not be scrubbed out of every message
    return len(part) >= _TOKEN_SEGMENT and any(c.isdigit() for c in part)


def _url_secrets(url: str) -> tuple[str, ...]:
    """The parts of an apprise URL that are credentials: password, tokens in path and query."""
    found = [url]
    try:
        parts = urlsplit(url)
        if parts.password:
            found += [parts.password, unquote(parts.password)]
        found += [s for s in parts.path.split("/") if _token_like(s)]
        found += [v for k, v in parse_qsl(parts.query) if k.lower() in _SECRET_PARAMS and v]
        host = parts.netloc.rpartition("@")[2].partition(":")[0]
        if parts.scheme.lower() not in _PLAIN_HOST and _token_like(host):
            # slack://TokenA/..., msteams://team/token...: the host is a token too (and
            # urlsplit's hostname is lower-cased, so take it as written)
            found.append(host)
    except ValueError:
        pass
    return tuple(found)


@dataclass(frozen=True)
class Delivery:
    """Which sinks took a message and which failed (by label)."""

    sent: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every sink took the message (or none is configured)."""
        return not self.failed


class Notifier:
    """Sends one message to every configured sink; a failing sink is logged, never raised."""

    def __init__(
        self,
        sinks: Sequence[Sink],
        *,
        title: str = "doorfix",
        redact: Iterable[str] = (),
        timeout: float = SEND_TIMEOUT,
    ) -> None:
        self.sinks = tuple(sinks)
        self.title = title
        self.timeout = timeout
        self._secrets = (*redact, *(s for sink in self.sinks for s in sink.secrets))

    @classmethod
    def from_env(
        cls,
        settings: Settings,
        *,
        env: Mapping[str, str] | None = None,
        redact: Iterable[str] = (),
        variable: str = ENV_NOTIFY_URLS,
    ) -> Notifier:
        """The notifier of ``variable`` (``DOORFIX_NOTIFY_URLS`` by default) and ``[report]``."""
        source = os.environ if env is None else env
        return cls(parse_sinks(source.get(variable)), title=settings.report.title, redact=redact)

    @property
    def enabled(self) -> bool:
        """True when at least one sink is configured."""
        return bool(self.sinks)

    @property
    def redactions(self) -> tuple[str, ...]:
        """The values scrubbed from every message: doorfix secrets and sink credentials."""
        return self._secrets

    def scrub(self, text: str) -> str:
        """``text`` without any doorfix secret or sink credential."""
        return redact_text(text, self._secrets)

    async def send(
        self,
        title: str,
        body: str,
        *,
        kind: Kind = "info",
        attach: Sequence[Path] = (),
    ) -> Delivery:
        """Send a Markdown message to every sink, one after the other, each with a deadline."""
        title, body = self.scrub(title), self.scrub(body)
        sent: list[str] = []
        failed: list[str] = []
        for sink in self.sinks:
            try:
                reason = await asyncio.wait_for(
                    asyncio.to_thread(_deliver, sink, title, body, kind, tuple(attach)),
                    self.timeout,
                )
            except TimeoutError:
                reason = f"no answer within {self.timeout:g} s"
            except Exception as exc:  # noqa: BLE001 - a broken sink must never fail the run
                reason = f"{type(exc).__name__}: {exc}"
            if reason is None:
                sent.append(sink.label)
                continue
            failed.append(sink.label)
            # the reason comes from apprise and may quote the URL: scrub it as a message
            log.warning(
                "notify_failed", sink=sink.label, scheme=sink.scheme, reason=self.scrub(reason)
            )
        if sent:
            log.info("notify_sent", sinks=sent, title=title)
        return Delivery(tuple(sent), tuple(failed))


@contextmanager
def _apprise_log() -> Iterator[io.StringIO]:
    """Capture apprise's warnings for one send; they may quote a sink URL, so none propagates."""
    logger = logging.getLogger(apprise.LOGGER_NAME)
    with _APPRISE_LOG:
        propagate, logger.propagate = logger.propagate, False
        try:
            capture = apprise.LogCapture(level=logging.WARNING)  # type: ignore[no-untyped-call]
            with capture as captured:
                yield captured
        finally:
            logger.propagate = propagate


def _deliver(sink: Sink, title: str, body: str, kind: Kind, attach: tuple[Path, ...]) -> str | None:
    """Send through one sink (blocking); None on success, else why it failed."""
    client = apprise.Apprise()
    with _apprise_log() as captured:
        if not client.add(sink.url):
            return "not an apprise URL it understands"
        attachment = apprise.AppriseAttachment([str(p) for p in attach]) if attach else None
        ok = client.notify(
            body=body,
            title=title,
            notify_type=kind,
            body_format=apprise.NotifyFormat.MARKDOWN,
            attach=attachment,
        )
    if ok:
        return None
    lines = [line for line in captured.getvalue().splitlines() if line.strip()]
    return lines[-1].split(" - ", 2)[-1] if lines else "the sink refused the message"


__all__ = ["Delivery", "Kind", "Notifier", "Sink", "parse_sinks"]
