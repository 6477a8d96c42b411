"""The journal's connection: opening, checking and closing it, and its guarded transactions.

:class:`JournalBase` holds the one SQLite connection and the lock around it; every operation
of :class:`~doorfix.agent.journal.store.Journal` reads through ``_read`` and writes through
``_write``, which turn any ``sqlite3`` error into a
:class:`~doorfix.errors.JournalError` naming the operation and file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote

from doorfix.agent.journal import rows, schema, sql
from doorfix.agent.journal.lock import RunLock
from doorfix.clock import Clock
from doorfix.errors import JournalError

__all__ = ["JournalBase"]


class JournalBase:
    """The journal's connection and lock, with the transactions every operation runs in."""

    def __init__(self, path: Path | str, *, clock: Clock, read_only: bool = False) -> None:
        """Open (creating and migrating) the journal at ``path``.

        ``read_only``: open an existing journal for reading only (``report``, ``history``):
        nothing is created, migrated or made private, and it works where the file or its
        directory is not writable; every write raises JournalError.
        """
        self._clock = clock
        self._lock = threading.RLock()
        self._path = str(path)
        memory = self._path == ":memory:"
        self.read_only = read_only and not memory
        if self.read_only:
            self._conn: sqlite3.Connection | None = _open_read_only(Path(path))
            self.run_lock = RunLock(None)
            return
        if not memory:
            _check_path(Path(path))
            _private(Path(path))
        try:
            conn = sqlite3.connect(
                self._path,
                timeout=schema.BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open journal {self._path}: {exc}") from exc
        try:
            schema.configure(conn, memory=memory, where=self._path)
            schema.migrate(conn, where=self._path, applied_at=self._now())
        except sqlite3.Error as exc:
            conn.close()
            raise JournalError(f"cannot open journal {self._path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        #: held by every acting run, so one process at a time reconciles and acts
        self.run_lock = RunLock(None if memory else self._path)

    @property
    def path(self) -> str:
        """The journal's file, or ``:memory:``."""
        return self._path

    def close(self) -> None:
        """Close the connection; later calls raise JournalError."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def check(self) -> str | None:
        """Run an integrity check and a write probe; None if healthy, else the reason."""
        with self._lock:
            if self._conn is None:
                return f"journal {self._path} is closed"
            conn = self._conn
            try:
                problems = [row[0] for row in conn.execute(schema.INTEGRITY_CHECK)]
            except sqlite3.Error as exc:
                return f"journal {self._path} cannot be read: {exc}"
            if problems != ["ok"]:
                return f"journal {self._path} is corrupt: {'; '.join(problems[:5])}"
            try:
                conn.execute(schema.PROBE_TIMEOUT)
                try:
                    conn.execute(schema.BEGIN)
                    conn.execute(sql.WRITE_PROBE, {"at": self._now()})
                    conn.execute(schema.COMMIT)
                finally:
                    _rollback(conn)
                    conn.execute(schema.RESTORE_TIMEOUT)
            except sqlite3.Error as exc:
                return f"journal {self._path} cannot be written: {exc}"
        return None

    # internals ---------------------------------------------------------------------------

    def _now(self) -> str:
        return rows.to_text(self._clock.now())

    def _live(self, op: str) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(f"{op}: journal {self._path} is closed")
        return self._conn

    @contextlib.contextmanager
    def _write(self, op: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._live(op)
            try:
                conn.execute(schema.BEGIN)
                yield conn
                conn.execute(schema.COMMIT)
            except sqlite3.Error as exc:
                _rollback(conn)
                raise JournalError(f"{op} failed on journal {self._path}: {exc}") from exc
            except BaseException:
                _rollback(conn)
                raise

    @contextlib.contextmanager
    def _read(self, op: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._live(op)
            try:
                yield conn
            except sqlite3.Error as exc:
                raise JournalError(f"{op} failed on journal {self._path}: {exc}") from exc


def _open_read_only(path: Path) -> sqlite3.Connection:
    """A connection that can only read ``path`` (SQLite's ``mode=ro``), schema checked.

    WAL readers normally create the ``-shm`` file beside the journal; where that cannot be
    done (a directory the reader may not write) and no writer is active (no ``-wal`` file),
    the file is opened ``immutable``: nothing can change under the reader.
    """
    where = f"cannot open journal {path}"
    if not path.is_file():
        raise JournalError(f"{where}: no such file")
    if not os.access(path, os.R_OK):
        raise JournalError(f"{where}: the file is not readable")
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    wal = Path(f"{path}-wal")
    attempts = [uri] if wal.exists() and wal.stat().st_size else [uri, f"{uri}&immutable=1"]
    error: sqlite3.Error | None = None
    for attempt in attempts:
        conn = sqlite3.connect(
            attempt,
            uri=True,
            timeout=schema.BUSY_TIMEOUT_S,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.row_factory = sqlite3.Row
        try:
            conn.execute(schema.CONNECTION_PRAGMAS[0])  # busy timeout
            conn.execute("PRAGMA query_only = ON")
            schema.check_readable(conn, where=str(path))
        except sqlite3.Error as exc:
            conn.close()
            error = exc
            continue
        except BaseException:
            conn.close()
            raise
        return conn
    raise JournalError(f"{where} for reading: {error}")


def _check_path(path: Path) -> None:
    """Refuse, with a message an operator can act on, a path SQLite could not use."""
    where = f"cannot open journal {path}"
    if path.is_dir():
        raise JournalError(f"{where}: it is a directory")
    parent = path.parent
    if not parent.is_dir():
        raise JournalError(f"{where}: directory {parent} does not exist")
    # WAL mode creates the -wal and -shm files beside the journal, so the directory must be
    # writable even when the file already exists
    if not os.access(parent, os.W_OK | os.X_OK):
        raise JournalError(f"{where}: directory {parent} is not writable")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise JournalError(f"{where}: the file is not readable and writable")


#: the journal holds names, card numbers and who was refused where: its owner's only
PRIVATE_FILE = 0o600


def _private(path: Path) -> None:
    """Create the journal 0600 (SQLite gives its -wal and -shm the file's own mode).

    A journal an older version left readable by others is made private too.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    except OSError as exc:
        raise JournalError(f"cannot open journal {path}: {exc.strerror}") from exc
    try:
        if os.fstat(fd).st_mode & 0o077:
            with contextlib.suppress(OSError):  # not ours to change: SQLite says if it matters
                os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    for extra in (f"{path}-wal", f"{path}-shm"):
        with contextlib.suppress(OSError):
            if os.stat(extra).st_mode & 0o077:
                os.chmod(extra, PRIVATE_FILE)


def _rollback(conn: sqlite3.Connection) -> None:
    # the error that made us roll back is the one to report, not a failed rollback
    with contextlib.suppress(sqlite3.Error):
        if conn.in_transaction:
            conn.rollback()
