"""One acting run at a time per scope: per journal file one process, per database row one replica.

A run that may act (not a dry-run) starts by reconciling what a crash left in flight. Two
processes on one journal (a one-shot ``doorfix run`` beside the daemon) would each take the
other's in-flight actions for a crash's leftovers, so every acting run holds ``PATH.lock``
(``flock``, released by the kernel when the process dies, so a crash never leaves it held).
A run of another process waits for every run of this one to finish, saying once (a warning,
which the CLI shows) who holds the lock: its pid and playbook(s).

Inside one process, runs that write different systems go side by side (the daemon's
``door-logs`` beside its ``aca-rejections``): :meth:`held` takes a turn for each *scope* the
run names (:mod:`doorfix.agent.engine.scopes`), so runs of one scope take turns, and the
process holds the journal's lock while any of its runs is inside. One process acting at a time
keeps each vendor's rate limit whole (the runs of a process share its clients' limiters) and
each run's reconciliation to what a gone process, or its own scope's last run, left.

On a PostgreSQL journal, shared by replicas on several machines, the lock is a row of
``run_locks`` per scope instead (:class:`DbRunLock`), so replicas run playbooks of different
scopes at the same time, as one daemon does; they keep each vendor's rate limit whole by
pacing their requests through the journal (:mod:`doorfix.agent.journal.pace`). A row is
taken by one conditional upsert, kept by a heartbeat, and taken over by another replica
once the heartbeat is older than
:attr:`DbRunLock.stale_after` (the longest API timeout plus the heartbeat interval, so a
call still in the air has landed or failed). Each take-over bumps the row's fence, so the dead
holder's late heartbeat or release matches no row; the taking run then settles what the dead
one left in flight by re-reading (the engine's reconcile), never by calling again.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from doorfix.errors import JournalError

if TYPE_CHECKING:
    from doorfix.agent.journal.connection import Database
    from doorfix.clock import Clock

log = structlog.get_logger("doorfix.journal")

#: how often a waiting run tries the lock again (real seconds: another process holds it)
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class _Inside:
    """A run inside the lock: its task, what it runs and the scopes it holds."""

    task: asyncio.Task[Any]
    what: str
    scopes: tuple[str, ...]


class Hold:
    """A run's hold on the lock: its turns in this process, given back at its end or before.

    :meth:`writes_sent` gives the turns back early where the lock allows it (the lock file:
    this process is the only one acting, and :mod:`~doorfix.agent.journal.live` keeps the
    overlapping runs apart); the hold across processes stays until the run ends.
    """

    def __init__(self, *, early: bool) -> None:
        self.turns: list[asyncio.Lock] = []
        self._early = early

    def writes_sent(self) -> bool:
        """Every write of the run is sent; whether the next run of its scopes may start now."""
        if self._early:
            self.give_back()
        return self._early

    def give_back(self) -> None:
        turns, self.turns = self.turns, []
        for turn in reversed(turns):
            turn.release()


class _Shared:
    """The runs of this process on one journal: a turn per scope, then the lock across processes.

    Subclasses take and let go of the lock across processes (:meth:`_enter`, :meth:`_leave`):
    one hold for every run of the process (the lock file) or a row per scope (the database);
    :meth:`held` is the only way in.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._entry = asyncio.Lock()
        self._turns: dict[str, asyncio.Lock] = {}
        #: each run of this process inside the lock now: its task, what it runs, its scopes
        #: (one entry per block, so a task may be inside twice)
        self._inside: dict[object, _Inside] = {}

    def _bind(self) -> None:
        """Fresh turns for a new event loop (an asyncio lock serves one loop)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._entry, self._turns = loop, asyncio.Lock(), {}

    #: whether a run may give its scopes' turns back before it ends (:meth:`Hold.writes_sent`)
    early_turns = False

    @contextlib.asynccontextmanager
    async def held(self, what: str, *, scopes: Iterable[str]) -> AsyncIterator[Hold]:
        """Hold the lock for the block, after this process's other runs of ``scopes``.

        Waits (with one warning) while another process holds what the run needs; runs of
        this process that share no scope with ``scopes`` are inside at the same time.
        """
        self._bind()
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 - held() is entered from a task
        entry = object()
        ordered = tuple(sorted(set(scopes)))
        hold = Hold(early=self.early_turns)
        try:
            for scope in ordered:
                turn = self._turns.setdefault(scope, asyncio.Lock())
                await turn.acquire()
                hold.turns.append(turn)
            await self._enter(entry, _Inside(task, what, ordered))
            try:
                yield hold
            except asyncio.CancelledError:
                self._raise_if_fenced(ordered)
                raise
            finally:
                await self._leave(entry)
        finally:
            hold.give_back()

    async def _enter(self, entry: object, inside: _Inside) -> None:
        """Take what the run needs across processes (its turns are held); record it inside."""
        raise NotImplementedError

    async def _leave(self, entry: object) -> None:
        """Let go of what the run took; it is no longer inside."""
        raise NotImplementedError

    def _raise_if_fenced(self, scopes: tuple[str, ...]) -> None:
        """Raise :class:`Fenced` if a lock of ``scopes`` was taken over (a database row's)."""


class RunLock(_Shared):
    """The lock file of one journal (see :class:`_Shared`)."""

    #: this process is the only one acting on the journal: a run in its verifications' tail
    #: lets the next run of its scopes start (see :mod:`~doorfix.agent.journal.live`)
    early_turns = True

    def __init__(self, journal_path: str | None) -> None:
        super().__init__()
        #: None for an in-memory journal, which no other process can open
        self.path = None if journal_path is None else Path(f"{journal_path}.lock")
        self._fd: int | None = None

    async def _enter(self, entry: object, inside: _Inside) -> None:
        """The first run of this process in takes the lock; every run is named in it."""
        async with self._entry:
            if not self._inside:
                await self._take(inside.what)
            self._inside[entry] = inside
            self._describe()

    async def _leave(self, entry: object) -> None:
        """The last run of this process out lets the lock go."""
        async with self._entry:
            del self._inside[entry]
            if self._inside:
                self._describe()
            else:
                await self._let_go()

    @property
    def runs(self) -> str:
        """What this process's runs inside the lock run, as the holder names them."""
        return "+".join(sorted({inside.what for inside in self._inside.values()}))

    async def _take(self, what: str) -> None:
        path = self.path
        if path is None:
            return
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise JournalError(f"cannot open the run lock {path}: {exc.strerror}") from exc
        said = False
        try:
            while not _try_lock(fd):
                if not said:
                    holder = _holder(fd)
                    # a warning: the CLI shows warnings, and a run that seems to hang must say why
                    log.warning(
                        "journal_busy",
                        lock=str(path),
                        holder=holder,
                        holder_pid=holder.get("pid"),
                        holder_playbook=holder.get("run"),
                        waiting=what,
                    )
                    said = True
                await asyncio.sleep(POLL_SECONDS)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        if said:
            log.info("journal_acquired", lock=str(path))

    def _describe(self) -> None:
        if self._fd is not None:
            _describe(self._fd, self.runs)

    async def _let_go(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the descriptor releases the flock


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _describe(fd: int, what: str) -> None:
    """Write who holds the lock into it, for the message of a process that waits."""
    text = json.dumps({"pid": os.getpid(), "run": what}).encode()
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, text, 0)


def _holder(fd: int) -> dict[str, object]:
    """Who holds the lock, as its holder wrote it (empty if it has not yet)."""
    try:
        raw = os.pread(fd, 4096, 0)
        holder = json.loads(raw) if raw else {}
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


#: seconds between a holder's heartbeats
HEARTBEAT_SECONDS = 5.0
#: a heartbeat older than this lets another replica take the lock (set from the config:
#: the longest API timeout plus the heartbeat interval)
STALE_AFTER_SECONDS = 60.0

_TAKE = (
    "INSERT INTO run_locks (lock_name, holder, run_what, fence, acquired_at, heartbeat_at) "
    "VALUES (:name, :holder, :what, 1, :now, :now) "
    "ON CONFLICT (lock_name) DO UPDATE SET holder = excluded.holder, "
    "run_what = excluded.run_what, fence = run_locks.fence + 1, "
    "acquired_at = excluded.acquired_at, heartbeat_at = excluded.heartbeat_at "
    "WHERE run_locks.holder IS NULL OR run_locks.heartbeat_at < :stale_before"
)
_FENCE = "SELECT fence, holder, run_what, heartbeat_at FROM run_locks WHERE lock_name = :name"
_BEAT = (
    "UPDATE run_locks SET heartbeat_at = :now "
    "WHERE lock_name = :name AND holder = :holder AND fence = :fence"
)
_RELEASE = (
    "UPDATE run_locks SET holder = NULL, run_what = NULL, heartbeat_at = NULL "
    "WHERE lock_name = :name AND holder = :holder AND fence = :fence"
)


def replica_id() -> str:
    """This process as a lock holder: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Fenced(JournalError):
    """This holder's lock was taken over (its heartbeat went stale): its run must stop."""


class DbRunLock(_Shared):
    """Run locks that are database rows with a heartbeat and a fence, one per scope.

    Unlike the lock file, which keeps every other process out while any run of this one
    acts, a replica holds only the rows of the scopes its runs hold (:meth:`row`): replicas
    run playbooks of different scopes at the same time, as one daemon does. Each system's
    rate limit stays whole across them because they pace their requests through the same
    journal (:class:`~doorfix.agent.journal.pace.FleetPace`).
    """

    def __init__(self, db: Database, *, clock: Clock, holder: str | None = None) -> None:
        super().__init__()
        self._db = db
        self._clock = clock
        self.holder = holder or replica_id()
        self.heartbeat_seconds = HEARTBEAT_SECONDS
        self.stale_after = STALE_AFTER_SECONDS
        #: (lock name -> fence) of the locks this object holds now
        self.fences: dict[str, int] = {}
        self._beats: dict[str, asyncio.Task[None]] = {}
        #: rows taken over while this process's runs were inside them
        self._fenced: set[str] = set()

    @staticmethod
    def row(scope: str) -> str:
        """The ``run_locks`` row of a scope."""
        return f"scope:{scope}"

    def _now(self) -> str:
        from doorfix.agent.journal.rows import to_text  # noqa: PLC0415 - avoid a cycle

        return to_text(self._clock.now())

    def try_acquire(self, what: str, *, name: str) -> int | None:
        """Take the lock if free or stale; its fence, or None if another holds it."""
        from doorfix.agent.journal.rows import to_text  # noqa: PLC0415

        now = self._clock.now()
        params = {
            "name": name,
            "holder": self.holder,
            "what": what,
            "now": to_text(now),
            "stale_before": to_text(now - timedelta(seconds=self.stale_after)),
        }
        with self._db.write("run_lock") as conn:
            taken = conn.execute(_TAKE, params).rowcount == 1
            row = conn.execute(_FENCE, {"name": name}).fetchone()
        if not taken or row is None or row["holder"] != self.holder:
            return None
        self.fences[name] = int(row["fence"])
        return self.fences[name]

    def holder_of(self, name: str) -> dict[str, object]:
        """Who holds a lock: holder, what it runs, its fence and last heartbeat."""
        with self._db.read("run_lock") as conn:
            row = conn.execute(_FENCE, {"name": name}).fetchone()
        if row is None:
            return {}
        return {
            "holder": row["holder"],
            "run": row["run_what"],
            "fence": row["fence"],
            "heartbeat_at": row["heartbeat_at"],
        }

    def beat(self, name: str) -> bool:
        """Renew the heartbeat; False once another replica has taken the lock over."""
        fence = self.fences.get(name)
        if fence is None:
            return False
        with self._db.write("run_lock_heartbeat") as conn:
            params = {"name": name, "holder": self.holder, "fence": fence, "now": self._now()}
            return conn.execute(_BEAT, params).rowcount == 1

    def release(self, name: str) -> bool:
        """Let the lock go; False if it had been taken over (the release matched no row)."""
        fence = self.fences.pop(name, None)
        if fence is None:
            return False
        with self._db.write("run_lock_release") as conn:
            params = {"name": name, "holder": self.holder, "fence": fence}
            return conn.execute(_RELEASE, params).rowcount == 1

    async def _enter(self, entry: object, inside: _Inside) -> None:
        """Take the row of each of the run's scopes, in order (its turns are already held).

        This process's turn of a scope admits one run of it at a time, so the run that has
        the turn is the only one of this process in the scope's row.
        """
        taken: list[str] = []
        try:
            for scope in inside.scopes:
                await self._take_row(self.row(scope), inside.what)
                taken.append(scope)
        except BaseException:
            for scope in taken:
                await self._let_go_row(self.row(scope))
            raise
        self._inside[entry] = inside

    async def _leave(self, entry: object) -> None:
        inside = self._inside.pop(entry)
        for scope in inside.scopes:
            await self._let_go_row(self.row(scope))

    async def _take_row(self, name: str, what: str) -> None:
        """Take one row, waiting (one warning) while another replica holds it; then beat.

        If the heartbeat finds the row taken over, every run of this process inside it is
        cancelled and raises :class:`Fenced`: what they would still write belongs to the new
        holder.
        """
        said = False
        while self.try_acquire(what, name=name) is None:
            if not said:
                holder = self.holder_of(name)
                log.warning(
                    "journal_busy",
                    lock=name,
                    holder=holder,
                    holder_playbook=holder.get("run"),
                    waiting=what,
                )
                said = True
            await asyncio.sleep(POLL_SECONDS)
        if said:
            log.info("journal_acquired", lock=name)
        self._fenced.discard(name)
        self._beats[name] = asyncio.create_task(
            self._heartbeat(name), name=f"doorfix-heartbeat-{name}"
        )

    async def _heartbeat(self, name: str) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                alive = await asyncio.to_thread(self.beat, name)
            except JournalError as exc:
                log.warning("run_lock_heartbeat_failed", lock=name, error=str(exc))
                continue
            if not alive:
                self._fenced.add(name)
                log.error("run_lock_fenced", lock=name, holder=self.holder)
                for inside in list(self._inside.values()):
                    if name in {self.row(scope) for scope in inside.scopes}:
                        inside.task.cancel()
                return

    def _raise_if_fenced(self, scopes: tuple[str, ...]) -> None:
        lost = sorted(self._fenced & {self.row(scope) for scope in scopes})
        if lost:
            raise Fenced(
                f"run lock {lost[0]!r} was taken over by another replica; this run stopped"
            ) from None

    async def _let_go_row(self, name: str) -> None:
        beats = self._beats.pop(name, None)
        if beats is not None:
            beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beats
        with contextlib.suppress(JournalError):
            self.release(name)
