"""One acting run at a time per journal, across processes: an exclusive lock beside the file.

A run that may act (not a dry-run) starts by reconciling what a crash left in flight. Two
processes on one journal (a one-shot ``doorfix run`` beside the daemon) would each take the
other's in-flight actions for a crash's leftovers, so every acting run holds ``PATH.lock``
(``flock``, released by the kernel when the process dies, so a crash never leaves it held).
A second process waits for the run in progress to finish, saying once (a warning, which the
CLI shows) who holds the lock: its pid and playbook.

On a PostgreSQL journal, shared by replicas on several machines, the lock is a row of
``run_locks`` instead (:class:`DbRunLock`): taken by one conditional upsert, kept by a
heartbeat, and taken over by another replica once the heartbeat is older than
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
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from doorfix.errors import JournalError

if TYPE_CHECKING:
    from doorfix.agent.journal.connection import Database
    from doorfix.clock import Clock

log = structlog.get_logger("doorfix.journal")

#: how often a waiting run tries the lock again (real seconds: another process holds it)
POLL_SECONDS = 0.2


class RunLock:
    """The lock file of one journal; :meth:`held` is the only way in."""

    def __init__(self, journal_path: str | None) -> None:
        #: None for an in-memory journal, which no other process can open
        self.path = None if journal_path is None else Path(f"{journal_path}.lock")
        self._fd: int | None = None

    @contextlib.asynccontextmanager
    async def held(self, what: str, *, name: str = "journal") -> AsyncIterator[None]:
        """Hold the lock for the block, waiting (with one log line) while another has it.

        ``name`` is the PostgreSQL lock's row; a file lock covers the whole journal.
        """
        del name
        if self.path is None:
            yield
            return
        await self._acquire(self.path, what)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, path: Path, what: str) -> None:
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
        _describe(fd, what)
        if said:
            log.info("journal_acquired", lock=str(path))

    def _release(self) -> None:
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


class DbRunLock:
    """A run lock that is a database row with a heartbeat and a fence (see the module)."""

    def __init__(self, db: Database, *, clock: Clock, holder: str | None = None) -> None:
        self._db = db
        self._clock = clock
        self.holder = holder or replica_id()
        self.heartbeat_seconds = HEARTBEAT_SECONDS
        self.stale_after = STALE_AFTER_SECONDS
        #: (lock name -> fence) of the locks this object holds now
        self.fences: dict[str, int] = {}

    def _now(self) -> str:
        from doorfix.agent.journal.rows import to_text  # noqa: PLC0415 - avoid a cycle

        return to_text(self._clock.now())

    def try_acquire(self, what: str, *, name: str = "journal") -> int | None:
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

    def holder_of(self, name: str = "journal") -> dict[str, object]:
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

    def beat(self, name: str = "journal") -> bool:
        """Renew the heartbeat; False once another replica has taken the lock over."""
        fence = self.fences.get(name)
        if fence is None:
            return False
        with self._db.write("run_lock_heartbeat") as conn:
            params = {"name": name, "holder": self.holder, "fence": fence, "now": self._now()}
            return conn.execute(_BEAT, params).rowcount == 1

    def release(self, name: str = "journal") -> bool:
        """Let the lock go; False if it had been taken over (the release matched no row)."""
        fence = self.fences.pop(name, None)
        if fence is None:
            return False
        with self._db.write("run_lock_release") as conn:
            params = {"name": name, "holder": self.holder, "fence": fence}
            return conn.execute(_RELEASE, params).rowcount == 1

    @contextlib.asynccontextmanager
    async def held(self, what: str, *, name: str = "journal") -> AsyncIterator[None]:
        """Hold the lock for the block, with a heartbeat; wait (one warning) while it is held.

        If the heartbeat finds the lock taken over, the block's task is cancelled and
        :class:`Fenced` raised: what the run would still write belongs to the new holder.
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
        task = asyncio.current_task()
        fenced = False

        async def heartbeat() -> None:
            nonlocal fenced
            while True:
                await asyncio.sleep(self.heartbeat_seconds)
                try:
                    alive = await asyncio.to_thread(self.beat, name)
                except JournalError as exc:
                    log.warning("run_lock_heartbeat_failed", lock=name, error=str(exc))
                    continue
                if not alive:
                    fenced = True
                    log.error("run_lock_fenced", lock=name, holder=self.holder)
                    if task is not None:
                        task.cancel()
                    return

        beats = asyncio.create_task(heartbeat(), name=f"doorfix-heartbeat-{name}")
        try:
            yield
        except asyncio.CancelledError:
            if fenced:
                raise Fenced(
                    f"run lock {name!r} was taken over by another replica; this run stopped"
                ) from None
            raise
        finally:
            beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beats
            with contextlib.suppress(JournalError):
                self.release(name)
