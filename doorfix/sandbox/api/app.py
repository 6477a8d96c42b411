"""The sandbox as one ASGI app: the three vendor APIs and the control API on path prefixes.

One server serves everything, so each system's ``base_url`` is the server root plus a prefix:

=================  ==============================  ====================================
prefix             serves                          config key (server ``http://H:P``)
=================  ==============================  ====================================
``/cloud``         intercom/door cloud (cloud.md)  ``[cloud] base_url = "http://H:P/cloud"``
``/aca``           access-control app (aca.md)     ``[aca] base_url = "http://H:P/aca"``
``/clp``           lock platform, Larry (clp.md)   ``[clp] base_url = "http://H:P/clp"``
``/clp-identity``  CLP identity server             ``[clp] identity_url``
``/sandbox``       control API (docs/sandbox.md)   none
=================  ==============================  ====================================

So the cloud's command endpoint is
``{base_url}/api/v1.0/invoke/open-ability/method/manager-commands`` and its token
``{base_url}/oauth/token``; ACA paths are ``{base_url}/api/v1/...``; CLP paths
``{base_url}/v1.2/...``, ``/v1.1/...`` and ``/larry/v1/...``; the CLP token is
``{identity_url}/connect/token`` with ``identity_url = "http://H:P/clp-identity"``.
Every request first lets the world catch up with its clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from doorfix.loopguard import LoopbackGuard
from doorfix.sandbox.api import aca as api_aca
from doorfix.sandbox.api import cloud as api_cloud
from doorfix.sandbox.api import clp as api_clp
from doorfix.sandbox.api import control
from doorfix.sandbox.api.auth import SandboxCredentials, TokenStore
from doorfix.sandbox.api.runtime import Answer, SandboxState, system_of
from doorfix.sandbox.faults.api import ApiFaults, DroppedConnection

if TYPE_CHECKING:
    from doorfix.sandbox.world.world import World


def _drop_start() -> Message:
    """What a dropped connection has sent before it dies: headers promising a body never sent."""
    return {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"1024")],
    }


class _SandboxMiddleware:
    """Log each vendor API request's arrival (:class:`~doorfix.sandbox.api.runtime.RequestLog`),
    advance the world per request, and turn a DroppedConnection into a torn-down connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: SandboxState = scope["app"].state.sandbox
        system = system_of(scope["path"])
        if system is not None:
            state.requests.record(system)
        state.world.advance()
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except DroppedConnection:
            # A server that raises before answering gets a 500 from uvicorn; one that raises
            # mid-response gets its socket closed, which is what a dropped connection is.
            # In process, SandboxTransport turns the re-raised marker into a protocol error.
            if not started:
                await send(_drop_start())
            raise


async def _answer(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Answer)  # noqa: S101 -- registered for Answer only
    return exc.response


def create_app(
    world: World,
    *,
    credentials: SandboxCredentials | None = None,
    api_faults: ApiFaults | None = None,
) -> Starlette:
    """The sandbox app over ``world``; ``app.state.sandbox`` holds its :class:`SandboxState`."""
    state = SandboxState(
        world=world,
        credentials=credentials or SandboxCredentials(),
        faults=api_faults if api_faults is not None else ApiFaults(world.seed),
        tokens=TokenStore(world.clock),
    )
    app = Starlette(
        routes=[
            Mount("/cloud", routes=api_cloud.routes()),
            Mount("/aca", routes=api_aca.routes()),
            Mount("/clp-identity", routes=api_clp.identity_routes()),
            Mount("/clp", routes=api_clp.routes()),
            Mount("/sandbox", routes=control.routes()),
        ],
        # the control API resets worlds and injects faults: no browser page may reach it
        middleware=[
            Middleware(LoopbackGuard, prefix="/sandbox", json_only=True),
            Middleware(_SandboxMiddleware),
        ],
        exception_handlers={Answer: _answer},
    )
    app.state.sandbox = state
    return app


def sandbox_state(app: Starlette) -> SandboxState:
    """The state of an app made by :func:`create_app` (world, faults, mutation log, tokens)."""
    state: SandboxState = app.state.sandbox
    return state
