"""The SQLite journal: one file in WAL mode with ``synchronous=FULL``, one connection.

The embedded default for one node, the demo and the tests that need no server. One
connection per journal, guarded by a lock, so the scheduler thread and the health endpoint may
share it; ``BEGIN IMMEDIATE`` takes the write lock up front, and every ``sqlite3`` error
leaves as :class:`~doorfix.errors.JournalError` naming the operation and the file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from doorfix.agent.journal import rows, schema, sql
from doorfix.agent.journal.connection import Conn, Database
from doorfix.clock import Clock
from doorfix.errors import JournalError

__all__ = ["PRIVATE_FILE", "SqliteDatabase"]


class SqliteDatabase:
    """A journal file (or ``:memory:``), opened, checked and migrated."""

    dialect = "sqlite"

    def __init__(self, path: str, *, clock: Clock, read_only: bool = False) -> None:
        """Open ``path``: created, made private and migrated, or (``read_only``) only read."""
        self._clock = clock
        self._lock = threading.RLock()
        self.where = path
        memory = path == ":memory:"
        #: the file, for the run lock beside it (None in memory)
        self.file: str | None = None if memory else path
        if read_only and not memory:
            self._conn: sqlite3.Connection | None = _open_read_only(Path(path))
            return
        if not memory:
            _check_path(Path(path))
            _private(Path(path))
        try:
            conn = sqlite3.connect(
                path, timeout=schema.BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open journal {path}: {exc}") from exc
        try:
            schema.configure(conn, memory=memory, where=path)
            schema.migrate(conn, where=path, applied_at=rows.to_text(clock.now()))
        except sqlite3.Error as exc:
            conn.close()
            raise JournalError(f"cannot open journal {path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _live(self, op: str) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(f"{op}: journal {self.where} is closed")
        return self._conn

    @contextlib.contextmanager
    def write(self, op: str) -> Iterator[Conn]:
        with self._lock:
            conn = self._live(op)
            try:
                conn.execute(schema.BEGIN)
                yield conn
                conn.execute(schema.COMMIT)
            except sqlite3.Error as exc:
                _rollback(conn)
                raise JournalError(f"{op} failed on journal {self.where}: {exc}") from exc
            except BaseException:
                _rollback(conn)
                raise

    @contextlib.contextmanager
    def read(self, op: str) -> Iterator[Conn]:
        with self._lock:
            conn = self._live(op)
            try:
                yield conn
            except sqlite3.Error as exc:
                raise JournalError(f"{op} failed on journal {self.where}: {exc}") from exc

    def check(self) -> str | None:
        """Run an integrity check and a write probe; None if healthy, else the reason."""
        with self._lock:
            if self._conn is None:
                return f"journal {self.where} is closed"
            conn = self._conn
            try:
                problems = [row[0] for row in conn.execute(schema.INTEGRITY_CHECK)]
            except sqlite3.Error as exc:
                return f"journal {self.where} cannot be read: {exc}"
            if problems != ["ok"]:
                return f"journal {self.where} is corrupt: {'; '.join(problems[:5])}"
            try:
                conn.execute(schema.PROBE_TIMEOUT)
                try:
                    conn.execute(schema.BEGIN)
                    conn.execute(sql.WRITE_PROBE, {"at": rows.to_text(self._clock.now())})
                    conn.execute(schema.COMMIT)
                finally:
                    _rollback(conn)
                    conn.execute(schema.RESTORE_TIMEOUT)
            except sqlite3.Error as exc:
                return f"journal {self.where} cannot be written: {exc}"
        return None

    def copy_to(self, target: Database) -> None:
        """SQLite's online backup of this journal into ``target`` (a consistent snapshot)."""
        if not isinstance(target, SqliteDatabase):
            raise TypeError("a journal is copied into a SQLite journal")
        with self._lock:
            source = self._live("scratch_copy")
            try:
                source.backup(target._live("scratch_copy"))
            except sqlite3.Error as exc:
                raise JournalError(f"cannot copy journal {self.where}: {exc}") from exc

    def tables(self) -> list[tuple[str, list[str]]]:
        """Each journal table, in the order it was created, with its columns.

        ``schema_version`` is left out: a copy records its own migrations.
        """
        with self.read("tables") as conn:
            names = [r[0] for r in conn.execute(schema.USER_TABLES + " ORDER BY rowid")]
            return [
                (name, [c[1] for c in conn.execute(f"PRAGMA table_info({name})")])
                for name in names
                if name != "schema_version"
            ]


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
