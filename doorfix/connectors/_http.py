"""The one HTTP layer under the three clients: auth, rate limit, retries, and the choke point.

Every request of every client goes through :meth:`HttpLayer.request`. It is the only place
that sees httpx exceptions and raw status codes; it turns them into the error tree of
:mod:`doorfix.errors` (most specific first, always ``raise ... from exc``), retries what the
call's :class:`CallRule` allows, refreshes an expired token once, and keeps the client inside
its rate limit so doorfix never causes the 429s it would then have to absorb.
"""

from __future__ import annotations

import asyncio
import email.utils
import heapq
import math
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import count
from typing import Any, Protocol

import httpx
import structlog
from pydantic import SecretStr
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_random_exponential

from doorfix.clock import Clock, StoppableClock, SystemClock
from doorfix.errors import (
    AuthError,
    ConnectorError,
    ContractError,
    DoorfixError,
    PermanentError,
    System,
    TransientError,
)
from doorfix.redact import SecretRedactor

log = structlog.get_logger("doorfix.http")

#: Extracts ``(vendor_code, message)`` from a system's error body; never raises.
VendorErrorReader = Callable[[httpx.Response], tuple[str | None, str]]

#: The largest answer read by default, counted after decompression (``max_response_bytes``).
MAX_RESPONSE_BYTES = 32 * 1024 * 1024

#: The most one inflating step produces: the body grows by steps, never by a whole chunk.
_INFLATE_STEP = 1 << 20

#: CLP's "operation cannot be executed": also given for about a minute after a change.
CLP_BLOCKED = "2203"
#: Without a Retry-After, a 2203 is waited out in steps of this many seconds: short back-off
#: steps would spend every attempt inside the minute the contract says it lasts.
CLP_BLOCKED_WAIT = 20.0


class CallRule(StrEnum):
    """How a call may be retried after a transient failure."""

    #: a read: retried on any transient error
    READ = "read"
    #: a write the contract says is safe to repeat (ACA's Access Matrix PUT)
    IDEMPOTENT = "idempotent"
    #: a write repeated only when the server surely did not act (429, connect error, 2203)
    UNSAFE = "unsafe"


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: attempts, total clock time, exponential back-off with jitter."""

    attempts: int = 5
    max_elapsed: float = 60.0
    initial_wait: float = 0.5
    max_wait: float = 20.0


@dataclass(frozen=True)
class RateLimit:
    """The client-side limit per system: requests per second and requests in flight."""

    per_second: float = 20.0
    concurrency: int = 8


@dataclass
class CallStats:
    """Counters of one layer (one system), read by metrics and benchmarks."""

    calls: int = 0
    errors: int = 0
    retries: int = 0
    token_fetches: int = 0
    by_endpoint: dict[str, int] = field(default_factory=dict)


#: a fleet's pace: given now and the spacing, the time this request's turn comes
SharedSlot = Callable[[datetime, float], Awaitable[datetime]]


#: Whether the requests of this context go ahead of others: see :func:`acting`
_ACTING: ContextVar[bool] = ContextVar("doorfix_acting", default=False)


@contextmanager
def acting(ahead: bool = True) -> Iterator[None]:
    """The requests made inside go ahead of those still waiting for their turn (or not).

    The engine carries out each action inside it: an action's writes end a person's wait at a
    door and are few, while the reads queued behind them gather facts for incidents not yet
    decided (shortest work first); it also keeps a write close to the reads that decided it.
    A verification's re-reads are made with ``ahead=False``: they are reads, queued among the
    reads by their person's wait (:func:`waiting_since`) and made at most once a second
    each, so a burst of fixes polling for their results never holds a write back and leaves
    turns to the reads of the incidents after them.
    Turns are still spaced by the rate limit: only the order of the queue changes.
    """
    token = _ACTING.set(ahead)
    try:
        yield
    finally:
        _ACTING.reset(token)


#: When the person the requests of this context act for was first refused (seconds since
#: the epoch; infinity: nobody waits): see :func:`waiting_since`
_WAITING: ContextVar[float] = ContextVar("doorfix_waiting_since", default=math.inf)


@contextmanager
def waiting_since(at: datetime | None) -> Iterator[None]:
    """The requests made inside act for a person refused at ``at`` (None: nobody waits).

    Among the actions' writes waiting in a system's queue, the longest-waiting person's go
    first (then first come): a toggle's disable and enable are served back to back for the
    person who waited longest, not interleaved with every other toggle's. Reads are served
    the same way among reads: a person's facts (and a fix's re-reads) by when the person
    was refused, and a read made for nobody in particular (a feed's page, a renewal's
    listing) as if its wait began when it was queued. So the person who waited longest is
    read first, and a burst of fixes never starves a feed: a feed's read waits only for
    the people refused before it was queued.
    """
    token = _WAITING.set(math.inf if at is None else at.timestamp())
    try:
        yield
    finally:
        _WAITING.reset(token)


#: Whether the requests of this context are work nobody waits for: see :func:`in_background`
_BACKGROUND: ContextVar[bool] = ContextVar("doorfix_background", default=False)


@contextmanager
def in_background() -> Iterator[None]:
    """The reads made inside are work nobody waits for at a door (the hardware scan).

    They wait behind every other request queued in their system: a person's facts, a fix's
    writes, a verification's re-reads (of this run or of one in its tail) never queue behind
    a scan of locks nobody reported. The rate limit is used whole: a background read takes
    any turn nobody else is queued for.
    """
    token = _BACKGROUND.set(True)
    try:
        yield
    finally:
        _BACKGROUND.reset(token)


#: a place in a system's queue: writes before reads, reads before background reads, each
#: by the person's wait (a read for nobody: from when it was queued), then first come
Priority = tuple[int, float]


class _Queue:
    """A lock whose waiters are served by priority (acting first), then first come."""

    def __init__(self) -> None:
        self._held = False
        self._waiters: list[tuple[Priority, int, asyncio.Future[None]]] = []
        self._arrivals = count()

    @asynccontextmanager
    async def turn(self, priority: Priority) -> AsyncIterator[None]:
        """Hold the queue's head; lower ``priority`` goes first."""
        await self._acquire(priority)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, priority: Priority) -> None:
        if not self._held and not self._waiters:
            self._held = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._arrivals), waiter))
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed the queue just as it was cancelled: pass it on
            raise

    def _release(self) -> None:
        while self._waiters:
            _, _, waiter = heapq.heappop(self._waiters)
            if not waiter.done():  # a cancelled waiter is skipped
                waiter.set_result(None)
                return
        self._held = False


class RateLimiter:
    """Spaces requests ``1/per_second`` apart (in clock time) and caps those in flight.

    Requests wait in one queue, the head waiting for a free slot and then its turn; inside
    :func:`acting` a request goes ahead of those not acting; inside :func:`in_background`
    after every other; within each, the longest-waiting person's first
    (:func:`waiting_since`), then first come.
    """

    def __init__(self, limit: RateLimit, clock: Clock) -> None:
        self._interval = 1.0 / limit.per_second if limit.per_second > 0 else 0.0
        self._slots = asyncio.Semaphore(max(1, limit.concurrency))
        self._queue = _Queue()
        # a turn is a fraction of a second, and a stop (SIGTERM) must not cut it: it could
        # fall between the two writes of one remedy (a toggle's disable and enable)
        self._clock = clock.inner if isinstance(clock, StoppableClock) else clock
        self._next: datetime | None = None
        self._shared: SharedSlot | None = None

    def share(self, slot: SharedSlot) -> None:
        """Take each request's turn from ``slot`` (a fleet's pace) instead of this process's."""
        self._shared = slot

    async def acquire(self) -> None:
        """Wait for this request's place in the queue, a free slot and its turn."""
        waited = _WAITING.get()
        if _ACTING.get():
            priority: Priority = (0, waited)
        elif _BACKGROUND.get():
            priority = (2, 0.0)
        else:
            # a read for nobody in particular waits from now: behind the people refused
            # before it was queued, ahead of those refused after
            priority = (1, waited if waited != math.inf else self._clock.now().timestamp())
        async with self._queue.turn(priority):
            await self._slots.acquire()
            if self._interval <= 0:
                return
            try:
                await self._wait_for_turn()
            except BaseException:  # cancelled while waiting: the slot was never used
                self._slots.release()
                raise

    async def _wait_for_turn(self) -> None:
        now = self._clock.now()
        if self._shared is not None:
            try:
                turn = await self._shared(now, self._interval)
            except DoorfixError as exc:  # the pace's database: this process's own spacing
                log.warning("shared_pace_unavailable", error=str(exc))
            else:
                if turn > now:
                    await self._clock.sleep((turn - now).total_seconds())
                return
        if self._next is not None and self._next > now:
            await self._clock.sleep((self._next - now).total_seconds())
            now = self._clock.now()
        base = self._next if self._next is not None and self._next > now else now
        self._next = base + timedelta(seconds=self._interval)

    def release(self) -> None:
        """Give the in-flight slot back."""
        self._slots.release()


class Auth(Protocol):
    """Supplies the Authorization header of a system."""

    #: whether a 401 can be cured by fetching a new token
    refreshable: bool

    async def header(self, layer: HttpLayer) -> str:
        """The Authorization header value to send now."""
        ...

    def invalidate(self) -> None:
        """Forget the cached token so the next call fetches a new one."""
        ...


class StaticKeyAuth:
    """ACA's static API key, sent as a bearer token; a 401 is final."""

    refreshable = False

    def __init__(self, key: SecretStr) -> None:
        self._key = key

    async def header(self, layer: HttpLayer) -> str:
        """``Bearer <key>``."""
        return f"Bearer {self._key.get_secret_value()}"

    def invalidate(self) -> None:
        """Nothing to forget: the key is static."""

    def __repr__(self) -> str:
        return "StaticKeyAuth(key=***)"


class ClientCredentialsAuth:
    """OAuth client credentials: the cloud's form post or CLP's Basic auth with a scope."""

    refreshable = True

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        *,
        basic: bool = False,
        scope: str | None = None,
        margin_seconds: float = 60.0,
    ) -> None:
        self._token_url = token_url
        self._client_id = client_id
        self._secret = client_secret
        self._basic = basic
        self._scope = scope
        self._margin = margin_seconds
        self._token: SecretStr | None = None
        self._expires: datetime | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return (
            f"ClientCredentialsAuth(token_url={self._token_url!r}, client_id={self._client_id!r})"
        )

    def invalidate(self) -> None:
        """Drop the cached token."""
        self._token = None
        self._expires = None

    async def header(self, layer: HttpLayer) -> str:
        """A cached token, or a new one when the cached one is near its expiry."""
        async with self._lock:
            now = layer.clock.now()
            if self._token is None or self._expires is None or now >= self._expires:
                await self._fetch(layer)
            assert self._token is not None  # noqa: S101 - _fetch sets it or raises
            return f"Bearer {self._token.get_secret_value()}"

    async def _fetch(self, layer: HttpLayer) -> None:
        form = {"grant_type": "client_credentials"}
        auth: httpx.BasicAuth | None = None
        if self._basic:
            auth = httpx.BasicAuth(self._client_id, self._secret.get_secret_value())
        else:
            form["client_id"] = self._client_id
            form["client_secret"] = self._secret.get_secret_value()
        if self._scope:
            form["scope"] = self._scope
        layer.stats.token_fetches += 1
        response = await layer.send_raw(
            "POST", self._token_url, endpoint="token", data=form, auth=auth
        )
        if response.status_code in (400, 401):
            code, _ = layer.vendor_error_of(response)
            raise AuthError(
                "credentials refused by the token endpoint",
                system=layer.system,
                endpoint="token",
                status=response.status_code,
                code=code or "invalid_client",
            )
        layer.raise_for_status(response, endpoint="token")
        try:
            body = response.json()
            token = str(body["access_token"])
            expires_in = float(body.get("expires_in", 300))
        except (ValueError, KeyError, TypeError) as exc:
            raise ContractError(
                "token response lacks access_token/expires_in",
                system=layer.system,
                endpoint="token",
                field="access_token",
                status=response.status_code,
            ) from exc
        # known to the redactor before anything can echo it back
        layer.redactor.add_token(token)
        self._token = SecretStr(token)
        self._expires = layer.clock.now() + timedelta(seconds=max(0.0, expires_in - self._margin))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _retryable(rule: CallRule) -> Callable[[BaseException], bool]:
    def check(exc: BaseException) -> bool:
        if not isinstance(exc, TransientError):
            return False
        return rule is not CallRule.UNSAFE or not exc.maybe_processed

    return check


class HttpLayer:
    """One system's HTTP access: the choke point every client request goes through."""

    def __init__(
        self,
        *,
        system: System,
        client: httpx.AsyncClient,
        auth: Auth,
        vendor_error: VendorErrorReader,
        retry: RetryPolicy | None = None,
        rate_limit: RateLimit | None = None,
        clock: Clock | None = None,
        redactor: SecretRedactor | None = None,
        deadline: float | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self.system: System = system
        self.clock: Clock = clock or SystemClock()
        self.stats = CallStats()
        #: every vendor text in an error passes it; tokens obtained are added to it
        self.redactor = redactor or SecretRedactor()
        #: real seconds one exchange may take, connect to last byte (None: the client's own)
        self._deadline = deadline
        self._max_bytes = max_response_bytes
        self._client = client
        self._auth = auth
        self._vendor_error = vendor_error
        self._retry = retry or RetryPolicy()
        self._limiter = RateLimiter(rate_limit or RateLimit(), self.clock)

    def __repr__(self) -> str:
        return f"HttpLayer(system={self.system!r}, base_url={str(self._client.base_url)!r})"

    def share_pace(self, slot: SharedSlot) -> None:
        """Pace this system's requests by a fleet's shared slots (see :class:`RateLimiter`)."""
        self._limiter.share(slot)

    async def aclose(self) -> None:
        """Close the underlying httpx client."""
        await self._client.aclose()

    async def __aenter__(self) -> HttpLayer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def vendor_error_of(self, response: httpx.Response) -> tuple[str | None, str]:
        """The vendor's (code, message) of an error response; never raises."""
        try:
            return self._vendor_error(response)
        except Exception:  # noqa: BLE001 - a reader must never mask the real error
            return None, response.reason_phrase or "error"

    async def request(
        self,
        method: str,
        url: str,
        *,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        rule: CallRule = CallRule.READ,
    ) -> httpx.Response:
        """Send with auth, rate limit and retries; return a 2xx response or raise our error."""
        started = self.clock.now()
        policy = self._retry

        def stop(state: RetryCallState) -> bool:
            if state.attempt_number >= policy.attempts:
                return True
            elapsed = (self.clock.now() - started).total_seconds()
            return elapsed + _planned_wait(state) > policy.max_elapsed

        backoff = wait_random_exponential(multiplier=policy.initial_wait, max=policy.max_wait)

        def wait(state: RetryCallState) -> float:
            return _planned_wait(state) if _retry_after(state) is not None else backoff(state)

        def _planned_wait(state: RetryCallState) -> float:
            after = _retry_after(state)
            return after if after is not None else 0.0

        async def before_sleep(state: RetryCallState) -> None:
            self.stats.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "http_retry",
                system=self.system,
                endpoint=endpoint,
                attempt=state.attempt_number,
                wait=round(state.upcoming_sleep, 3),
                error=type(exc).__name__ if exc else None,
                status=getattr(exc, "status", None),
                code=getattr(exc, "code", None),
            )

        retrying = AsyncRetrying(
            stop=stop,
            wait=wait,
            retry=retry_if_exception(_retryable(rule)),
            sleep=self.clock.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        processed = False
        async for attempt in retrying:
            with attempt:
                try:
                    return await self._attempt(
                        method,
                        url=url,
                        endpoint=endpoint,
                        params=params,
                        json=json,
                        headers=headers,
                    )
                except TransientError as exc:
                    # the call as a whole may have acted if any attempt may have: a 429 after
                    # a dropped answer must not tell the caller that nothing changed
                    processed = processed or exc.maybe_processed
                    exc.maybe_processed = processed
                    exc.write = rule is not CallRule.READ
                    exc.scrub(self.redactor.redact)
                    raise
                except ConnectorError as exc:
                    exc.write = rule is not CallRule.READ
                    # a vendor may quote our credentials back: no error leaves with them
                    exc.scrub(self.redactor.redact)
                    raise
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def _attempt(
        self,
        method: str,
        *,
        url: str,
        endpoint: str,
        params: Mapping[str, Any] | None,
        json: Any,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        fresh_token = False
        for _ in range(2):
            try:
                auth_header = await self._auth.header(self)
            except TransientError as exc:
                # the call itself was never sent: repeating it is safe even for a write
                exc.maybe_processed = False
                raise
            merged = {**(headers or {}), "Authorization": auth_header}
            response = await self.send_raw(
                method, url, endpoint=endpoint, params=params, json=json, headers=merged
            )
            if response.status_code != 401:
                self.raise_for_status(response, endpoint=endpoint)
                return response
            if not self._auth.refreshable or fresh_token:
                break
            # one new token and one repeat; a second 401 is an authentication error
            self._auth.invalidate()
            fresh_token = True
        code, message = self.vendor_error_of(response)
        self.stats.errors += 1
        raise AuthError(
            f"unauthorized: {message}", system=self.system, endpoint=endpoint, status=401, code=code
        )

    async def send_raw(
        self,
        method: str,
        url: str,
        *,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
    ) -> httpx.Response:
        """One HTTP exchange inside the rate limit, transport errors mapped; no retry."""
        await self._limiter.acquire()
        try:
            self.stats.calls += 1
            self.stats.by_endpoint[endpoint] = self.stats.by_endpoint.get(endpoint, 0) + 1
            request = self._client.build_request(
                method, url, params=params, json=json, data=data, headers=headers
            )
            # one deadline from connect to the last byte: httpx's timeouts bound each read,
            # so a server trickling a byte at a time would hold the call for ever
            async with asyncio.timeout(self._deadline):
                return await self._exchange(request, endpoint=endpoint, auth=auth)
        except TimeoutError as exc:
            self.stats.errors += 1
            raise TransientError(
                f"no complete answer within {self._deadline:g} s",
                system=self.system,
                endpoint=endpoint,
            ) from exc
        except httpx.HTTPError as exc:
            self.stats.errors += 1
            raise self._transport_error(exc, endpoint) from exc
        finally:
            self._limiter.release()

    async def _exchange(
        self, request: httpx.Request, *, endpoint: str, auth: httpx.Auth | None
    ) -> httpx.Response:
        """Send, and read the body up to ``max_response_bytes`` after decompression."""
        response = await self._client.send(
            request, auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT, stream=True
        )
        try:
            body = await self._read_body(response, endpoint)
        except zlib.error as exc:
            raise self._contract(response, endpoint, f"cannot be decompressed: {exc}") from exc
        finally:
            await response.aclose()
        # what ``Response.aread`` would have stored, read within the limit instead
        response._content = body
        return response

    async def _read_body(self, response: httpx.Response, endpoint: str) -> bytes:
        """The body, inflated here a bounded step at a time, never past the limit.

        httpx would inflate each chunk whole: one 64 KiB chunk of a compression bomb is 64 MiB.
        """
        limit = self._max_bytes
        if response.is_stream_consumed:
            # an in-memory transport's answer, read (and inflated) when it was made
            if len(response.content) > limit:
                raise self._contract(
                    response, endpoint, f"larger than max_response_bytes ({limit} bytes)"
                )
            return response.content
        encoding = response.headers.get("Content-Encoding", "")
        inflate = _Inflater.of(encoding)
        if inflate is None:
            raise self._contract(response, endpoint, f"unsupported encoding {encoding[:40]!r}")
        chunks: list[bytes] = []
        size = 0
        async for raw in response.aiter_raw():
            for piece in inflate.feed(raw, min(limit - size + 1, _INFLATE_STEP)):
                size += len(piece)
                if size > limit:
                    raise self._contract(
                        response, endpoint, f"larger than max_response_bytes ({limit} bytes)"
                    )
                chunks.append(piece)
        return b"".join(chunks)

    def _contract(self, response: httpx.Response, endpoint: str, what: str) -> ContractError:
        self.stats.errors += 1
        return ContractError(
            f"answer {what}", system=self.system, endpoint=endpoint, status=response.status_code
        )

    def _transport_error(self, exc: httpx.HTTPError, endpoint: str) -> ConnectorError:
        name = type(exc).__name__
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
            # the request never reached the server: safe to repeat even a write
            return TransientError(
                f"cannot connect ({name})",
                system=self.system,
                endpoint=endpoint,
                maybe_processed=False,
            )
        if isinstance(exc, httpx.TimeoutException):
            return TransientError(f"timed out ({name})", system=self.system, endpoint=endpoint)
        if isinstance(exc, httpx.TransportError):
            return TransientError(
                f"connection failed ({name})", system=self.system, endpoint=endpoint
            )
        return PermanentError(f"request failed ({name})", system=self.system, endpoint=endpoint)

    def raise_for_status(self, response: httpx.Response, *, endpoint: str) -> None:
        """Map a non-2xx response to our error tree (most specific first)."""
        status = response.status_code
        if 200 <= status < 300:
            return
        self.stats.errors += 1
        code, message = self.vendor_error_of(response)
        if status == 401:
            raise AuthError(
                message, system=self.system, endpoint=endpoint, status=status, code=code
            )
        if status == 429:
            raise TransientError(
                f"rate limited: {message}",
                system=self.system,
                endpoint=endpoint,
                status=status,
                code=code,
                retry_after=parse_retry_after(
                    response.headers.get("Retry-After"), self.clock.now()
                ),
                maybe_processed=False,
            )
        if status == 403 and code == CLP_BLOCKED:
            after = parse_retry_after(response.headers.get("Retry-After"), self.clock.now())
            raise TransientError(
                f"operation blocked for now: {message}",
                system=self.system,
                endpoint=endpoint,
                status=status,
                code=code,
                retry_after=CLP_BLOCKED_WAIT if after is None else after,
                maybe_processed=False,
            )
        if status in (408, 500, 502, 503, 504) or status > 500:
            raise TransientError(
                f"server error: {message}",
                system=self.system,
                endpoint=endpoint,
                status=status,
                code=code,
                retry_after=parse_retry_after(
                    response.headers.get("Retry-After"), self.clock.now()
                ),
            )
        raise PermanentError(
            message, system=self.system, endpoint=endpoint, status=status, code=code
        )


class _Inflater:
    """Content-Encoding ``identity``, ``gzip`` or ``deflate``, inflated at most N bytes a step."""

    def __init__(self, wbits: int | None) -> None:
        self._wbits = wbits
        self._zlib = None if wbits is None else zlib.decompressobj(wbits)
        self._first = True

    @classmethod
    def of(cls, header: str) -> _Inflater | None:
        """The inflater of a Content-Encoding header; None when doorfix does not accept it."""
        encoding = header.strip().lower()
        if encoding in ("", "identity"):
            return cls(None)
        if encoding in ("gzip", "x-gzip"):
            return cls(zlib.MAX_WBITS | 16)
        if encoding == "deflate":
            return cls(zlib.MAX_WBITS)
        return None

    def feed(self, data: bytes, most: int) -> Iterator[bytes]:
        """The bytes ``data`` inflates to, in pieces of at most ``most`` bytes."""
        if self._zlib is None:
            yield data
            return
        pending = data
        while pending:
            try:
                piece = self._zlib.decompress(pending, max(1, most))
            except zlib.error:
                if not (self._first and self._wbits == zlib.MAX_WBITS):
                    raise
                # "deflate" is sent raw by some servers, without the zlib header
                self._wbits = -zlib.MAX_WBITS
                self._zlib = zlib.decompressobj(self._wbits)
                continue
            self._first = False
            pending = self._zlib.unconsumed_tail
            if piece:
                yield piece
            elif pending:
                continue
            if self._zlib.eof:
                return


def _retry_after(state: RetryCallState) -> float | None:
    exc = state.outcome.exception() if state.outcome else None
    return exc.retry_after if isinstance(exc, TransientError) else None
