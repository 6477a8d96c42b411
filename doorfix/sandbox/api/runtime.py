"""What the three vendor APIs share per request: the app state, the mutation log, the fault gate."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from doorfix.clock import Clock, ManualClock
from doorfix.errors import System
from doorfix.sandbox.api.auth import SandboxCredentials, TokenStore
from doorfix.sandbox.faults.api import ApiFaults, DroppedConnection, FaultKind, Hit
from doorfix.sandbox.world import wire

if TYPE_CHECKING:
    from doorfix.sandbox.world.world import World

#: builds a response in one system's error envelope from (HTTP status, code, message);
#: codes are the world's (``not_found``, ``invalid``, ...) plus ``unauthorized``,
#: ``rate_limited``, ``internal`` and ``operation_blocked``
Envelope = Callable[[int, str, str], Response]


class Answer(Exception):
    """Carries a finished response out of a handler (the app's exception handler sends it)."""

    def __init__(self, response: Response) -> None:
        self.response = response
        super().__init__(response.status_code)


@dataclass(frozen=True, slots=True)
class Mutation:
    """One request that asked a vendor API to change the world."""

    seq: int
    at: datetime
    system: System
    operation: str
    targets: dict[str, Any]
    params: dict[str, Any]
    status: int
    outcome: str  # "ok" or the error code answered
    dropped: bool = False  # the connection was dropped after the change took effect

    def to_json(self) -> dict[str, Any]:
        """The log row as ``GET /sandbox/mutations`` answers it."""
        return {
            "seq": self.seq,
            "at": wire.iso(self.at),
            "system": self.system,
            "operation": self.operation,
            "targets": wire.jsonable(self.targets),
            "params": wire.jsonable(self.params),
            "status": self.status,
            "outcome": self.outcome,
            "dropped": self.dropped,
        }


class MutationLog:
    """Every write request that reached the world, in order; ``seq`` never restarts."""

    def __init__(self) -> None:
        self._rows: list[Mutation] = []
        self._seq = 0

    def record(
        self,
        *,
        at: datetime,
        system: System,
        operation: str,
        targets: dict[str, Any],
        params: dict[str, Any],
        status: int,
        outcome: str,
        dropped: bool = False,
    ) -> Mutation:
        """Append one row and return it."""
        self._seq += 1
        row = Mutation(self._seq, at, system, operation, targets, params, status, outcome, dropped)
        self._rows.append(row)
        return row

    def since(self, seq: int = 0) -> list[Mutation]:
        """Rows with a ``seq`` greater than ``seq``."""
        return [r for r in self._rows if r.seq > seq]

    def clear(self) -> None:
        """Forget every row (numbering continues, so a ``since`` poller misses nothing new)."""
        self._rows.clear()


#: the path prefixes of the vendor APIs, longest first, and the system each request counts for
API_PREFIXES = (
    ("/clp-identity/", "clp_identity"),
    ("/cloud/", "cloud"),
    ("/aca/", "aca"),
    ("/clp/", "clp"),
)


class RequestLog:
    """When each vendor API request arrived, per system: what a rate limit is measured on.

    Times are ``time.monotonic()`` seconds (a rate limit is real time, whatever the world's
    clock), taken as the request reaches the app, before any fault or handler; the control
    API (``/sandbox``) is not logged. At most ``keep`` requests per system are kept.
    """

    def __init__(self, keep: int = 1_000_000) -> None:
        self._times: dict[str, deque[float]] = {}
        self._keep = keep

    def record(self, system: str, at: float | None = None) -> None:
        """Log one request to ``system`` at ``at`` (default: now)."""
        times = self._times.get(system)
        if times is None:
            times = self._times[system] = deque(maxlen=self._keep)
        times.append(time.monotonic() if at is None else at)

    def times(self, system: str) -> list[float]:
        """The arrival times of ``system``'s requests, oldest first."""
        return list(self._times.get(system, ()))

    def systems(self) -> list[str]:
        """The systems that were asked anything."""
        return sorted(self._times)

    def busiest_second(self, system: str, window: float = 1.0) -> int:
        """The most requests to ``system`` in any half-open ``window`` [t, t + window)."""
        return busiest(self.times(system), window)

    def clear(self) -> None:
        """Forget every request."""
        self._times.clear()


def busiest(times: list[float], window: float = 1.0) -> int:
    """The most of ``times`` inside any half-open interval [t, t + window).

    The busiest interval can always be slid right until it starts at one of the times, so
    trying each time as the start finds it (two pointers over the sorted times).
    """
    ordered = sorted(times)
    most = 0
    end = 0
    for start, t in enumerate(ordered):
        while end < len(ordered) and ordered[end] < t + window:
            end += 1
        most = max(most, end - start)
    return most


def system_of(path: str) -> str | None:
    """The vendor system a request path is for (None: the control API or no system)."""
    for prefix, system in API_PREFIXES:
        if path.startswith(prefix):
            return system
    return None


@dataclass(slots=True)
class SandboxState:
    """Everything one sandbox app serves from; ``world`` is replaced by a reset."""

    world: World
    credentials: SandboxCredentials
    faults: ApiFaults
    tokens: TokenStore
    mutations: MutationLog = field(default_factory=MutationLog)
    requests: RequestLog = field(default_factory=RequestLog)

    @property
    def clock(self) -> Clock:
        """The world's clock (a reset keeps it)."""
        return self.world.clock

    def now(self) -> datetime:
        """The world's current time."""
        return self.world.clock.now()

    def record(
        self,
        system: System,
        operation: str,
        targets: dict[str, Any],
        params: dict[str, Any],
        *,
        status: int,
        outcome: str,
        dropped: bool = False,
    ) -> Mutation:
        """Log a write request at the current clock time."""
        return self.mutations.record(
            at=self.now(),
            system=system,
            operation=operation,
            targets=targets,
            params=params,
            status=status,
            outcome=outcome,
            dropped=dropped,
        )


def state_of(request: Request) -> SandboxState:
    """The sandbox state of the app serving ``request``."""
    state: SandboxState = request.app.state.sandbox
    return state


async def gate(
    state: SandboxState,
    system: System,
    endpoint: str,
    envelope: Envelope,
    *,
    write: bool = False,
    token: bool = False,
) -> Hit | None:
    """Apply the API fault due to this request, if any.

    Raises :class:`Answer` (an error response) or :class:`DroppedConnection`; waits out a
    ``slow`` fault; returns a drop-after hit of a write, which the handler raises after the
    world has changed (the case where a client cannot know whether its write landed).
    """
    hit = state.faults.on_request(system, endpoint, write=write, token=token)
    if hit is None:
        return None
    kind = hit.kind
    if kind is FaultKind.SLOW:
        if hit.after and write:
            return hit  # the write lands first; its answer is held back (see after_write)
        await slow_answer(state, hit.slow_seconds)
        return None
    if kind is FaultKind.DROP:
        if hit.after and write:
            return hit
        raise DroppedConnection(f"{system} {endpoint}")
    if kind is FaultKind.RATE_LIMITED:
        response = envelope(429, "rate_limited", "Too many requests")
        response.headers["Retry-After"] = str(hit.retry_after)
        raise Answer(response)
    if kind is FaultKind.E500:
        raise Answer(envelope(500, "internal", "Internal server error"))
    if kind in (FaultKind.E502, FaultKind.E503):
        # gateways answer in their own words, not in the vendor's envelope
        status = int(kind.value)
        text = "Bad Gateway" if status == 502 else "Service Unavailable"
        headers = {"Retry-After": str(hit.retry_after)} if status == 503 else None
        raise Answer(PlainTextResponse(text, status_code=status, headers=headers))
    if kind is FaultKind.CLP_2203:
        raise Answer(envelope(403, "operation_blocked", "Operation cannot be executed"))
    if kind is FaultKind.CLOUD_BUSINESS_ERROR:
        raise Answer(envelope(200, hit.code, hit.message))
    return None


async def slow_answer(state: SandboxState, seconds: float) -> None:
    """Hold an answer back ``seconds``: real time (what a client's timeout sees), except in a
    world on a :class:`ManualClock`, a test stepping time, where the wait is that clock's, so
    concurrent requests keep one order and a seed gives one storm."""
    if isinstance(state.clock, ManualClock):
        await state.clock.sleep(seconds)
    else:
        await asyncio.sleep(seconds)


async def after_write(hit: Hit | None, what: str) -> None:
    """Apply an ``after`` fault once a write took effect: hold the answer back, or drop it."""
    if hit is None:
        return
    if hit.kind is FaultKind.SLOW:
        await asyncio.sleep(hit.slow_seconds)
        return
    raise DroppedConnection(f"{what} dropped after it took effect")


def dropped(hit: Hit | None) -> bool:
    """Whether an ``after`` fault drops the answer (for the mutation log)."""
    return hit is not None and hit.kind is FaultKind.DROP


async def json_body(request: Request) -> Any:
    """The request body parsed as JSON, or None when it is not JSON."""
    raw = await request.body()
    try:
        return json.loads(raw) if raw else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
