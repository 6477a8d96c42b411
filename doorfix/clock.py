"""One injectable clock for the sandbox and the engine.

Tests step a :class:`ManualClock` instead of sleeping, or run concurrent work on a
:class:`SkipClock` (waits overlap, idle time is skipped); the demo runs an
:class:`AcceleratedClock`; production uses :class:`SystemClock`. Every clock answers
timezone-aware UTC datetimes, and ``sleep`` waits in *clock* time, so a retry back-off or a
verification poll under a manual clock advances simulated time instead of the wall clock.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from doorfix.errors import Interrupted


@runtime_checkable
class Clock(Protocol):
    """What doorfix needs of time."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


def utc(dt: datetime) -> datetime:
    """Return ``dt`` as aware UTC; naive datetimes are taken to be UTC already."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """Current wall-clock time in UTC."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when told to; ``sleep`` advances it instead of waiting."""

    def __init__(self, start: datetime) -> None:
        self._now = utc(start)

    def now(self) -> datetime:
        """The clock's current time."""
        return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        """Move the clock forward by ``delta`` (a timedelta or seconds); never backwards."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        if step < timedelta(0):
            raise ValueError("a clock never goes backwards")
        self._now += step
        return self._now

    def set(self, when: datetime) -> datetime:
        """Jump to ``when``, which must not be in the clock's past."""
        target = utc(when)
        if target < self._now:
            raise ValueError("a clock never goes backwards")
        self._now = target
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Advance by ``seconds`` and let other tasks run once."""
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


class AcceleratedClock:
    """Real time sped up by ``factor`` from ``start`` (the demo runs an hour in a minute)."""

    def __init__(self, start: datetime, factor: float) -> None:
        if factor <= 0:
            raise ValueError("factor must be positive")
        self._start = utc(start)
        self._factor = factor
        self._t0 = time.monotonic()

    @property
    def factor(self) -> float:
        """How many clock seconds pass per real second."""
        return self._factor

    def now(self) -> datetime:
        """Start plus the real time elapsed, times the factor."""
        elapsed = (time.monotonic() - self._t0) * self._factor
        return self._start + timedelta(seconds=elapsed)

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of clock time, i.e. ``seconds / factor`` of real time."""
        await asyncio.sleep(max(0.0, seconds) / self._factor)


class SkipClock:
    """Real time, plus every wait skipped: concurrent waits overlap, as they do in real time.

    A task's ``sleep`` registers its wake-up time and waits; once no task can run (every one
    waits on this clock), the clock jumps to the earliest wake-up and wakes those due. So 25
    verifications sleeping 2 s at once cost 2 s of clock time, not 50 s (a clock that added
    each wait as it came would count them one after another).
    """

    def __init__(self, start: datetime) -> None:
        self._start = start
        self._t0 = time.monotonic()
        self._skipped = 0.0
        self._waiters: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._seq = 0
        self._driver: asyncio.Task[None] | None = None

    def now(self) -> datetime:
        """Start plus the real time elapsed plus the time skipped."""
        return self._start + timedelta(seconds=time.monotonic() - self._t0 + self._skipped)

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time, which passes once every task waits."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._seq += 1
        heapq.heappush(
            self._waiters, (self.now() + timedelta(seconds=max(0.0, seconds)), self._seq, future)
        )
        if self._driver is None or self._driver.done():
            self._driver = loop.create_task(self._drive())
        await future

    async def _drive(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiters:
            await asyncio.sleep(0)
            if loop._ready:  # type: ignore[attr-defined]  # another task can still run
                continue
            wake = self._waiters[0][0]
            self.skip_to(wake)
            while self._waiters and self._waiters[0][0] <= self.now():
                _, _, future = heapq.heappop(self._waiters)
                if not future.done():
                    future.set_result(None)

    def skip_to(self, when: datetime) -> None:
        """Jump forward to ``when`` (nothing if it is past)."""
        self._skipped += max(0.0, (when - self.now()).total_seconds())


class StoppableClock:
    """Another clock whose waits end at once, raising :class:`Interrupted`, once stopped.

    The daemon's agent runs on one: SIGTERM calls :meth:`stop`, so a run waiting in a retry
    back-off, a rate-limit turn or a verification poll stops waiting (no further call is
    sent), while a call already sent is answered and recorded.
    """

    def __init__(self, inner: Clock) -> None:
        self.inner = inner
        self._stopped = asyncio.Event()

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stopped.is_set()

    def stop(self) -> None:
        """End every wait now and every later one at once."""
        self._stopped.set()

    def now(self) -> datetime:
        """The inner clock's time."""
        return self.inner.now()

    async def sleep(self, seconds: float) -> None:
        """The inner clock's sleep, unless stopped first: then raise :class:`Interrupted`."""
        if self.stopped:
            raise Interrupted("stopping: no more waiting")
        sleeper = asyncio.ensure_future(self.inner.sleep(seconds))
        waiter = asyncio.ensure_future(self._stopped.wait())
        try:
            await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waiter):
                task.cancel()
        if self.stopped:
            raise Interrupted("stopping: a wait was cut short")


def stopped(clock: Clock) -> bool:
    """True when ``clock`` is a stopped :class:`StoppableClock` (no new work should start)."""
    return isinstance(clock, StoppableClock) and clock.stopped
