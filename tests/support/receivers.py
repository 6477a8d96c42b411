"""Real receivers on 127.0.0.1 for what doorfix sends: an SMTP server and a webhook.

:class:`SmtpServer` is aiosmtpd with a login (plain SMTP, no TLS: apprise's
``mode=insecure``); :class:`Webhook` is a Starlette app under uvicorn. Both run in threads
and are reached over real sockets, so a doorfix subprocess can send to them.
:func:`free_port` gives a port nobody listens on (a dead sink).
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from support.polling import wait_for

SMTP_USER = "doorfix"
SMTP_PASSWORD = "smtp-PASS-7c1e9a2b44"
HOOK_TOKEN = "hooktoken-5d6e7f8a9b0c1d2e"


def free_port() -> int:
    """A port nothing listens on (bound and released: refused until someone takes it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class Webhook:
    """A real HTTP receiver on 127.0.0.1 (Starlette under uvicorn, in a thread)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        app = Starlette(routes=[Route("/{path:path}", self._receive, methods=["POST"])])
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    async def _receive(self, request: Request) -> JSONResponse:
        body = await request.json()
        with self._lock:
            self.received.append({"path": request.url.path, **body})
            self.headers.append(dict(request.headers))
        return JSONResponse({"ok": True})

    def messages(self) -> list[dict[str, Any]]:
        """What arrived so far."""
        with self._lock:
            return list(self.received)

    def url(self, path: str = f"hooks/{HOOK_TOKEN}") -> str:
        """The apprise URL of this receiver (a generic JSON webhook)."""
        return f"json://127.0.0.1:{self.port}/{path}"

    def __enter__(self) -> Webhook:
        self._thread.start()
        wait_for(lambda: self._server.started, timeout=10, what="the webhook to listen")
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()


@dataclass
class Mailbox:
    """What the SMTP server accepted, and the logins it saw."""

    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.messages.append(parsed)
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login == SMTP_USER.encode()
            and data.password == SMTP_PASSWORD.encode()
        )
        if ok:
            with self.lock:
                self.logins.append(mechanism)
        return AuthResult(success=ok)

    def received(self) -> list[EmailMessage]:
        with self.lock:
            return list(self.messages)


class SmtpServer:
    """aiosmtpd on 127.0.0.1 with a login; ``with SmtpServer() as smtp: smtp.url(...)``."""

    def __init__(self) -> None:
        self.mailbox = Mailbox()
        self.port = free_port()
        self._controller = Controller(
            self.mailbox,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self.mailbox.authenticate,
            auth_require_tls=False,
        )

    def url(self, to: str = "ops@example.test") -> str:
        """The apprise ``mailto://`` URL that logs in and sends to ``to``."""
        return (
            f"mailto://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{self.port}"
            f"?mode=insecure&from=doorfix@example.test&to={to}"
        )

    def received(self) -> list[EmailMessage]:
        """The messages accepted so far."""
        return self.mailbox.received()

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


def text_of(message: EmailMessage) -> str:
    """The plain-text body of a mail."""
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())
