"""The daemon's endpoint: ``/healthz``, ``/metrics`` and the console, on 127.0.0.1 by default.

A small Starlette app served by uvicorn inside the daemon's own event loop. The socket is
bound before uvicorn starts, so port 0 gives a free port that is known at once; uvicorn is
kept away from SIGTERM and SIGINT, which belong to the daemon (it finishes its run first).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from doorfix.agent.daemon.console import Console
from doorfix.loopguard import LoopbackGuard

#: the address the endpoint listens on unless ``[daemon] host`` says otherwise
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Health:
    """The daemon's health: ``reason`` is None when healthy; ``details`` go in the body."""

    reason: str | None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when healthy."""
        return self.reason is None


def build_endpoint(
    *,
    health: Callable[[], Awaitable[Health]],
    registry: CollectorRegistry,
    console: Console | None = None,
) -> Starlette:
    """The app: ``GET /healthz`` (200 or 503, JSON), ``GET /metrics`` (Prometheus text),
    and the supervisors' console's pages when ``console`` is given."""

    async def healthz(_request: Request) -> Response:
        state = await health()
        if state.ok:
            return JSONResponse({"status": "ok", **state.details})
        body = {"status": "unhealthy", "reason": state.reason, **state.details}
        return JSONResponse(body, status_code=503)

    async def metrics(request: Request) -> Response:
        # the library's own negotiation: the text format, or OpenMetrics when asked for
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(registry), headers={"Content-Type": content_type})

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    handlers: dict[Any, Any] = {}
    if console is not None:
        routes += console.routes()
        handlers[404] = console.not_found
        handlers[405] = console.not_found
    return Starlette(
        routes=routes,
        exception_handlers=handlers,
        # a page of another site (cross-origin, DNS rebinding) must neither read nor write it
        middleware=[Middleware(LoopbackGuard)],
    )


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the daemon decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Endpoint:
    """The app served on ``127.0.0.1:port`` in the running event loop."""

    def __init__(
        self, app: Starlette, *, port: int, host: str = LOOPBACK, startup_timeout: float = 10.0
    ) -> None:
        self._app = app
        self._host = host
        self._wanted = port
        self._timeout = startup_timeout
        self._socket: socket.socket | None = None
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._socket is None:
            raise RuntimeError("the endpoint is not started")
        port: int = self._socket.getsockname()[1]
        return port

    async def start(self) -> int:
        """Bind, start serving, and return the port; OSError if the port is taken."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._wanted))
        except OSError:
            sock.close()
            raise
        self._socket = sock
        config = uvicorn.Config(
            self._app,
            http="h11",
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="endpoint")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        while not self._server.started:
            if self._task.done() or loop.time() > deadline:
                await self.stop()
                raise OSError(f"the endpoint did not start on {self._host}:{self._wanted}")
            await asyncio.sleep(0.01)
        return self.port

    async def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            try:
                await asyncio.wait_for(asyncio.shield(self._task), self._timeout)
            except TimeoutError:
                self._server.force_exit = True
                await self._task
        self._task = None
        self._server = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
