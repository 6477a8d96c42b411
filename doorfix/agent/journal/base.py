"""The journal's connection: opening, checking and closing it, and its guarded transactions.

:class:`JournalBase` holds one :class:`~doorfix.agent.journal.connection.Database`, SQLite
(a file or ``:memory:``) or PostgreSQL (a ``postgresql://`` URL); every operation of
:class:`~doorfix.agent.journal.store.Journal` reads through ``_read`` and writes through
``_write``, which turn any driver error into a :class:`~doorfix.errors.JournalError` naming
the operation and the journal.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

from doorfix.agent.journal import rows
from doorfix.agent.journal.connection import Conn, Database, is_url
from doorfix.agent.journal.live import LiveRuns
from doorfix.agent.journal.lock import DbRunLock, RunLock
from doorfix.agent.journal.pace import FleetPace
from doorfix.clock import Clock

__all__ = ["JournalBase"]


class JournalBase:
    """The journal's storage and run lock, with the transactions every operation runs in."""

    def __init__(self, path: Path | str, *, clock: Clock, read_only: bool = False) -> None:
        """Open (creating and migrating) the journal at ``path``.

        ``read_only``: open an existing journal for reading only (``report``, ``history``):
        nothing is created, migrated or made private, and it works where the file or its
        directory is not writable; every write raises JournalError.
        """
        self._clock = clock
        memory = str(path) == ":memory:"
        #: a reader's journal: every write raises JournalError (never in memory)
        self.read_only = read_only and not memory
        self._db: Database = open_database(str(path), clock=clock, read_only=self.read_only)
        self._path = self._db.where
        #: held by every acting run, so what a run reconciles is never another live run's: a
        #: file lock beside a SQLite journal (one process at a time), a row per scope with a
        #: heartbeat in a PostgreSQL one (one replica per scope at a time)
        self.run_lock: RunLock | DbRunLock
        #: this process's runs still working on this journal, and what each holds
        self.live = LiveRuns()
        #: a fleet's pace of requests per vendor system (a PostgreSQL journal's only)
        self.pace: FleetPace | None = None
        if self._db.dialect == "postgresql" and not self.read_only:
            self.run_lock = DbRunLock(self._db, clock=clock)
            self.pace = FleetPace(self._db)
        else:
            file = None if self.read_only else getattr(self._db, "file", None)
            self.run_lock = RunLock(file)

    @property
    def path(self) -> str:
        """The journal's file, ``:memory:``, or its URL without the password."""
        return self._path

    @property
    def clock(self) -> Clock:
        """The clock the journal stamps its rows with."""
        return self._clock

    @property
    def conninfo(self) -> str | None:
        """A PostgreSQL journal's connection string (with its password: never log it)."""
        return getattr(self._db, "conninfo", None)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._db.dialect

    def close(self) -> None:
        """Close the connection; later calls raise JournalError."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def scratch_copy(self) -> Self:
        """An in-memory SQLite copy of this journal, for a dry-run to work on and throw away.

        A dry-run must write nothing a later run reads; working on a copy makes that true by
        construction, however the engine's steps change. The copy is a consistent snapshot
        taken without waiting for a run in progress: SQLite's online backup of a SQLite
        journal; of a PostgreSQL journal, every journal table's rows read in one
        ``REPEATABLE READ`` transaction (other replicas keep writing meanwhile).
        """
        copy = type(self)(":memory:", clock=self._clock)
        try:
            self._db.copy_to(copy._db)
        except BaseException:
            copy.close()
            raise
        return copy

    def check(self) -> str | None:
        """Run an integrity check and a write probe; None if healthy, else the reason."""
        return self._db.check()

    # internals ---------------------------------------------------------------------------

    def _now(self) -> str:
        return rows.to_text(self._clock.now())

    @contextlib.contextmanager
    def _write(self, op: str) -> Iterator[Conn]:
        with self._db.write(op) as conn:
            yield conn

    @contextlib.contextmanager
    def _read(self, op: str) -> Iterator[Conn]:
        with self._db.read(op) as conn:
            yield conn


def open_database(target: str, *, clock: Clock, read_only: bool = False) -> Database:
    """Open the journal at ``target``: created and migrated if needed, or only read."""
    if is_url(target):
        # imported here so that a SQLite-only run never loads psycopg
        from doorfix.agent.journal.postgres import PostgresDatabase  # noqa: PLC0415

        return PostgresDatabase(target, clock=clock, read_only=read_only)
    from doorfix.agent.journal.sqlite import SqliteDatabase  # noqa: PLC0415

    return SqliteDatabase(target, clock=clock, read_only=read_only)
