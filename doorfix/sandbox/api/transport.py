"""Talking to the sandbox app in process, as tests and benchmarks do.

:class:`SandboxTransport` is ``httpx.ASGITransport`` plus one thing a real network has: a
dropped connection surfaces as ``httpx.RemoteProtocolError``, not as an app exception.
:class:`InProcessSandbox` bundles an app with one ``httpx.AsyncClient`` per system.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

import httpx
from starlette.applications import Starlette
from starlette.types import ASGIApp

from doorfix.sandbox.api.app import create_app, sandbox_state
from doorfix.sandbox.api.auth import CLP_SCOPE, SandboxCredentials
from doorfix.sandbox.api.runtime import SandboxState
from doorfix.sandbox.faults.api import ApiFaults, DroppedConnection

if TYPE_CHECKING:
    from doorfix.sandbox.world.world import World

#: the host in-process clients address; ``.test`` is reserved, so it never resolves for real
IN_PROCESS_ROOT = "http://sandbox.test"


class SandboxTransport(httpx.AsyncBaseTransport):
    """An ASGI transport to the sandbox app that turns a dropped connection into a network error."""

    def __init__(self, app: ASGIApp) -> None:
        self._inner = httpx.ASGITransport(app=app, client=("127.0.0.1", 49152))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Serve ``request`` through the app."""
        try:
            return await self._inner.handle_async_request(request)
        except DroppedConnection as exc:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a complete response.", request=request
            ) from exc

    async def aclose(self) -> None:
        """Nothing to release in process."""
        await self._inner.aclose()


@dataclass(slots=True)
class InProcessSandbox:
    """A sandbox app and raw clients for each system (no credentials attached)."""

    app: Starlette
    cloud: httpx.AsyncClient
    aca: httpx.AsyncClient
    clp: httpx.AsyncClient
    clp_identity: httpx.AsyncClient
    control: httpx.AsyncClient

    @classmethod
    def create(
        cls,
        world: World,
        *,
        credentials: SandboxCredentials | None = None,
        api_faults: ApiFaults | None = None,
        root: str = IN_PROCESS_ROOT,
    ) -> InProcessSandbox:
        """Build the app over ``world`` and open a client per system."""
        app = create_app(world, credentials=credentials, api_faults=api_faults)
        return cls.over(app, root=root)

    @classmethod
    def over(cls, app: Starlette, *, root: str = IN_PROCESS_ROOT) -> InProcessSandbox:
        """Open a client per system on an existing app."""

        def client(prefix: str) -> httpx.AsyncClient:
            return httpx.AsyncClient(
                transport=SandboxTransport(app), base_url=f"{root}{prefix}", timeout=10.0
            )

        return cls(
            app=app,
            cloud=client("/cloud"),
            aca=client("/aca"),
            clp=client("/clp"),
            clp_identity=client("/clp-identity"),
            control=client("/sandbox"),
        )

    @property
    def state(self) -> SandboxState:
        """World, API faults, tokens and the mutation log."""
        return sandbox_state(self.app)

    @property
    def world(self) -> World:
        """The world served now (a reset replaces it)."""
        return self.state.world

    @property
    def faults(self) -> ApiFaults:
        """The API faults (configure them directly in a test)."""
        return self.state.faults

    async def cloud_token(self) -> str:
        """A fresh cloud access token with the configured credentials."""
        creds = self.state.credentials
        response = await self.cloud.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": creds.cloud_client_id,
                "client_secret": creds.cloud_client_secret,
            },
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    async def clp_token(self) -> str:
        """A fresh CLP access token with the configured credentials."""
        creds = self.state.credentials
        pair = f"{creds.clp_client_id}:{creds.clp_client_secret}".encode()
        response = await self.clp_identity.post(
            "/connect/token",
            data={"grant_type": "client_credentials", "scope": CLP_SCOPE},
            headers={"Authorization": f"Basic {base64.b64encode(pair).decode()}"},
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def aca_headers(self) -> dict[str, str]:
        """The ACA API key as a bearer header."""
        return {"Authorization": f"Bearer {self.state.credentials.aca_api_key}"}

    async def aclose(self) -> None:
        """Close every client."""
        for c in (self.cloud, self.aca, self.clp, self.clp_identity, self.control):
            await c.aclose()

    async def __aenter__(self) -> InProcessSandbox:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
