"""One acting run at a time per journal, across processes: an exclusive lock beside the file.

A run that may act (not a dry-run) starts by reconciling what a crash left in flight. Two
processes on one journal (a one-shot ``doorfix run`` beside the daemon) would each take the
other's in-flight actions for a crash's leftovers, so every acting run holds ``PATH.lock``
(``flock``, released by the kernel when the process dies, so a crash never leaves it held).
A second process waits for the run in progress to finish, saying once (a warning, which the
CLI shows) who holds the lock: its pid and playbook.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import structlog

from doorfix.errors import JournalError

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
    async def held(self, what: str) -> AsyncIterator[None]:
        """Hold the lock for the block, waiting (with one log line) while another has it."""
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
