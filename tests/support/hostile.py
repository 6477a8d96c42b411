"""A hostile upstream: the sandbox behind an ASGI layer that misbehaves on chosen paths.

One small app with modes, served by uvicorn on 127.0.0.1 (``ServedSandbox``) or in process:

* ``echo``: an error whose body quotes the request back (its Authorization header, its body
  as sent and decoded), as a careless vendor's error page does: 401 on a token endpoint, 403
  elsewhere;
* ``trickle``: a 200 whose body comes one byte every ``interval`` seconds, for ever (until
  the client hangs up);
* ``bomb``: a 200 of ``gzip`` content that inflates about a thousand-fold (``size`` bytes on
  the wire);
* ``huge``: a 200 JSON page of ``size`` bytes, streamed;
* ``names``: the sandbox's own answer, with escape sequences (colours, a window title, a
  bidi override) and markdown/HTML put into every ``*name*`` field.

Requests whose path starts with one of ``paths`` get the mode; every other request goes to the
sandbox as it is, so a playbook gets as far as the hostile call.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import struct
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import unquote_plus

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: what ``names`` mode adds to every name: SGR red, an OSC window title, RLO, markdown, HTML
NASTY = (
    "\x1b[31mRED\x1b[0m\x1b]0;pwned\x07\u202eevil\u202c[click](http://evil.example)![i](x)<b>b</b>"
)

#: the token endpoints of the three systems (the sandbox's path prefixes)
TOKEN_PATHS = ("/cloud/oauth/token", "/clp-identity/")


@cache
def gzip_bomb(size: int) -> bytes:
    """A gzip stream of about ``size`` bytes that inflates to about 1000 times that.

    One MiB of spaces deflated once after a full flush (which resets the compressor, so the
    block is the same each time) and repeated: quick to make at any size.
    """
    chunk = b" " * (1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH)
    count = max(1, size // len(block))
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(chunk, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    trailer = struct.pack("<II", crc, (count * len(chunk)) & 0xFFFFFFFF)
    return header + block * count + packer.flush() + trailer


@dataclass
class Hostile:
    """The ASGI app: ``mode`` on the requests under ``paths``, the sandbox for the rest."""

    inner: ASGIApp
    mode: str = "echo"
    paths: tuple[str, ...] = ()
    #: trickle: seconds between bytes; bomb: compressed bytes; huge: bytes of the page
    interval: float = 0.5
    size: int = 2_000_000
    #: seconds each trickled call was held (client hung up or server stopped), for the figures
    held: list[float] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not any(path.startswith(p) for p in self.paths):
            await self.inner(scope, receive, send)
            return
        if self.mode == "names":
            await self.inner(scope, receive, _renaming(send))
            return
        body = await _body(receive)
        if self.mode == "echo":
            await _echo(scope, body, send)
        elif self.mode == "trickle":
            await self._trickle(send)
        elif self.mode == "bomb":
            await _answer(
                send, 200, gzip_bomb(self.size), [(b"content-encoding", b"gzip")], stream=True
            )
        elif self.mode == "huge":
            await _huge(send, self.size)
        else:
            raise ValueError(f"unknown mode {self.mode}")

    async def _trickle(self, send: Send) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        try:
            while True:
                await send({"type": "http.response.body", "body": b" ", "more_body": True})
                await asyncio.sleep(self.interval)
        finally:
            self.held.append(loop.time() - start)


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    stream: bool = False,
) -> None:
    head = [(b"content-type", b"application/json"), *(headers or [])]
    if not stream:
        head.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": head})
    step = 1 << 16 if stream else len(body) or 1
    for at in range(0, len(body), step):
        await send({"type": "http.response.body", "body": body[at : at + step], "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _echo(scope: Scope, body: bytes, send: Send) -> None:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    auth = headers.get("authorization", "")
    sent = body.decode("latin-1")
    parts = [f"Authorization: {auth}", f"body: {sent}", f"form: {unquote_plus(sent)}"]
    scheme, _, credentials = auth.partition(" ")
    if scheme.lower() == "basic":
        parts.append(f"basic: {base64.b64decode(credentials).decode('latin-1')}")
    elif credentials:
        parts.append(f"token: {credentials}")
    text = "; ".join(parts)
    token = any(scope["path"].startswith(p) for p in TOKEN_PATHS)
    status = 401 if token else 403
    # every field any of the three systems' error readers looks at says it
    problem = {
        "error": text,
        "error_description": text,
        "message": text,
        "msg": text,
        "detail": text,
        "title": text,
        "code": text,
        "result": -1,
        "Message": text,
        "ErrorCode": text,
        "status": status,
        "type": "about:blank",
        "errors": [{"message": text, "code": text}],
    }
    if scope["path"].startswith("/cloud"):
        problem["error"] = {"code": text, "message": text}
    await _answer(send, status, json.dumps(problem).encode())


async def _huge(send: Send, size: int) -> None:
    row = b'"' + b"x" * 1022 + b'",'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"data": [', "more_body": True})
    block = row * 256
    sent = 0
    while sent < size:
        await send({"type": "http.response.body", "body": block, "more_body": True})
        sent += len(block)
    await send({"type": "http.response.body", "body": b'"end"]}'})


def _nastier(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: (v + NASTY if "name" in k.lower() and isinstance(v, str) else _nastier(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_nastier(v) for v in value]
    return value


def _renaming(send: Send) -> Send:
    """A ``send`` that buffers a JSON answer and adds :data:`NASTY` to its names."""
    start: Message = {}
    chunks: list[bytes] = []

    async def renamed(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        body = b"".join(chunks)
        with contextlib.suppress(ValueError):
            body = json.dumps(_nastier(json.loads(body))).encode()
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return renamed
