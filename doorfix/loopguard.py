"""A guard for the unauthenticated HTTP servers doorfix runs on loopback.

Listening on 127.0.0.1 keeps the network out, not a browser on the same machine: any page can
send a ``text/plain`` POST to ``http://127.0.0.1:PORT`` (no preflight), and a DNS-rebinding
page can even read the answer under its own host name. :class:`LoopbackGuard` refuses a
request whose ``Host`` is not the address the server serves, whose ``Origin`` (when a
browser sends one) is not that address either, and (``json_only``) a request with a body
whose content type is not JSON, which no cross-site form or simple request can send.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: names a loopback server may be reached by
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
#: methods that carry a body a cross-site page could forge
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            text: str = value.decode("latin-1")
            return text
    return None


def allowed_hosts(scope: Scope) -> frozenset[str]:
    """The ``Host`` values that name the address this request came in on."""
    server = scope.get("server")
    if not server:
        return frozenset()
    host, port = server[0], server[1]
    names = {host, *LOOPBACK_NAMES} if host in {"127.0.0.1", "::1", "localhost"} else {host}
    names = {f"[{n}]" if ":" in n and not n.startswith("[") else n for n in names}
    hosts = {f"{n}:{port}" for n in names}
    if port in (80, None):
        hosts |= names
    return frozenset(hosts)


def refusal(scope: Scope, *, json_only: bool) -> tuple[int, str] | None:
    """Why this request is refused (status, reason), or None when it may pass."""
    hosts = allowed_hosts(scope)
    host = (_header(scope, b"host") or "").lower()
    if host not in hosts:
        return 421, "Host is not the loopback address this server serves"
    origin = _header(scope, b"origin")
    if origin is not None and origin.lower() not in {f"http://{h}" for h in hosts}:
        return 403, "cross-origin requests are refused"
    if json_only and scope.get("method", "GET") in _WRITES:
        length = _header(scope, b"content-length")
        bodiless = scope["method"] == "DELETE" and length in (None, "0")
        media = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if not bodiless and media != "application/json":
            return 415, "the body must be JSON (Content-Type: application/json)"
    return None


class LoopbackGuard:
    """ASGI middleware: :func:`refusal` on every HTTP request under ``prefix``."""

    def __init__(self, app: ASGIApp, *, prefix: str = "/", json_only: bool = False) -> None:
        self.app = app
        self._prefix = prefix
        self._json_only = json_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a refused request with a JSON error; pass the rest on."""
        if scope["type"] == "http" and scope.get("path", "").startswith(self._prefix):
            refused = refusal(scope, json_only=self._json_only)
            if refused is not None:
                status, reason = refused
                body = json.dumps({"error": reason}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
