"""Serving the sandbox over HTTP with uvicorn, on 127.0.0.1 only.

:func:`serve` runs it in the foreground (``doorfix sandbox``); :class:`ServedSandbox` runs it
in a background thread on a free port for tests, benchmarks and the demo.
"""

from __future__ import annotations

import gc
import logging
import socket
import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette

from doorfix.clock import AcceleratedClock, Clock, ManualClock, SystemClock
from doorfix.sandbox.api.app import create_app, sandbox_state
from doorfix.sandbox.api.auth import SandboxCredentials
from doorfix.sandbox.api.runtime import SandboxState
from doorfix.sandbox.faults.api import ApiFaults, DroppedConnection
from doorfix.sandbox.scenarios.registry import build_scenario

#: the only address the sandbox ever listens on: it has no real authentication
LOOPBACK = "127.0.0.1"


class QuietDrops(logging.Filter):
    """Keep uvicorn from logging a traceback for every drop the sandbox does on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for the error record of a :class:`DroppedConnection`."""
        return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


def make_clock(speed: float, start: datetime | None) -> Clock:
    """The sandbox clock: ``speed`` 0 is a manual clock (stepped via ``POST /sandbox/clock``),
    1 without ``start`` the wall clock, anything else real time sped up from ``start``."""
    if speed < 0:
        raise ValueError("speed must not be negative")
    origin = start or datetime.now(UTC)
    if speed == 0:
        return ManualClock(origin)
    if speed == 1 and start is None:
        return SystemClock()
    return AcceleratedClock(origin, speed)


def build_app(
    scenario: str,
    *,
    seed: int,
    clock: Clock,
    params: dict[str, Any] | None = None,
    credentials: SandboxCredentials | None = None,
) -> Starlette:
    """A sandbox app over a freshly built scenario."""
    world = build_scenario(scenario, seed=seed, clock=clock, **(params or {}))
    return create_app(world, credentials=credentials, api_faults=ApiFaults(seed))


def serve(
    scenario: str,
    *,
    port: int,
    seed: int,
    speed: float,
    start: datetime | None,
    params: dict[str, Any],
) -> None:
    """Build ``scenario`` and serve it on ``127.0.0.1:port`` until interrupted."""
    app = build_app(scenario, seed=seed, clock=make_clock(speed, start), params=params)
    # the world lives as long as the process: spare the collector walking it on every request
    # (a scale world otherwise costs a full collection every few pages)
    gc.collect()
    gc.freeze()
    logging.getLogger("uvicorn.error").addFilter(QuietDrops())
    listener = loopback_socket(port)
    config = uvicorn.Config(app, http="h11", log_level="info")
    print(
        f"doorfix sandbox: {scenario} on http://{LOOPBACK}:{listener.getsockname()[1]}", flush=True
    )
    uvicorn.Server(config).run(sockets=[listener])


def loopback_socket(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1 with TCP_NODELAY, which accepted connections inherit.

    Without it, h11's answers (headers, then body) meet the client's delayed ACK and every
    request waits about 40 ms.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((LOOPBACK, port))
    sock.listen(128)
    return sock


class _Server(uvicorn.Server):
    """A uvicorn server that says when its socket is listening (or that it never will)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.ready.set()


class ServedSandbox:
    """The sandbox app under real uvicorn on 127.0.0.1 and a free port, in a background thread.

    ``with ServedSandbox(app) as served: httpx.get(f"{served.base_url}/sandbox/truth")``.
    """

    def __init__(self, app: Starlette, *, port: int = 0, startup_timeout: float = 10.0) -> None:
        self.app = app
        self._timeout = startup_timeout
        # bind here so the port is known (and ours) before uvicorn starts
        self._socket = loopback_socket(port)
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app, http="h11", lifespan="off", log_level="warning", access_log=False
        )
        self._server = _Server(config)
        self._quiet = QuietDrops()
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"sandbox-uvicorn-{self.port}",
            daemon=True,
        )

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: add ``/cloud``, ``/aca``, ``/clp``, ... per system."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def urls(self) -> dict[str, str]:
        """The config URLs of each system: cloud, aca, clp, clp_identity, control."""
        root = self.base_url
        return {
            "cloud": f"{root}/cloud",
            "aca": f"{root}/aca",
            "clp": f"{root}/clp",
            "clp_identity": f"{root}/clp-identity",
            "control": f"{root}/sandbox",
        }

    @property
    def state(self) -> SandboxState:
        """The served app's state (world, API faults, mutation log)."""
        return sandbox_state(self.app)

    def start(self) -> ServedSandbox:
        """Start serving; returns once the socket accepts connections."""
        logging.getLogger("uvicorn.error").addFilter(self._quiet)
        self._thread.start()
        if not self._server.ready.wait(self._timeout) or not self._server.started:
            self.stop()
            raise RuntimeError(f"uvicorn did not start on {self.base_url}")
        return self

    def stop(self) -> None:
        """Ask uvicorn to finish and wait for its thread."""
        self._server.should_exit = True
        # a test server drains nothing: a request a fault holds back must not hold up the stop
        self._server.force_exit = True
        if self._thread.is_alive():
            self._thread.join(self._timeout)
        self._socket.close()
        logging.getLogger("uvicorn.error").removeFilter(self._quiet)

    def __enter__(self) -> ServedSandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
