"""The PostgreSQL journal: the shared journal of a fleet of replicas (psycopg 3 and its pool).

``[journal] url = "postgresql://user@host/db"`` selects it. The password never sits in the
URL (the config refuses one there): it comes from ``$DOORFIX_JOURNAL_PASSWORD`` or from
libpq's ``~/.pgpass``. Every write is one transaction on a pooled connection, committed before
the call returns (PostgreSQL's ``synchronous_commit`` makes it durable as SQLite's FULL fsync
does), so intent-before-call and outcome-after hold as on SQLite; the rules that must hold
across replicas (one real call per action key, one open incident per key, one holder of a
run lock) are the database's constraints, not the code's.

Migrations are :data:`~doorfix.agent.journal.schema.MIGRATIONS`, each step's PostgreSQL DDL,
applied under a transaction-scoped advisory lock so replicas starting together migrate once.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import conninfo
from psycopg.rows import RowMaker
from psycopg_pool import ConnectionPool, PoolTimeout

from doorfix.agent.journal import rows, schema, sql
from doorfix.agent.journal.connection import Conn, Database
from doorfix.agent.journal.sqlite import SqliteDatabase
from doorfix.clock import Clock
from doorfix.errors import JournalError

__all__ = ["ENV_PASSWORD", "PostgresDatabase", "public_url"]

#: the variable the journal's password comes from (else libpq's ~/.pgpass)
ENV_PASSWORD = "DOORFIX_JOURNAL_PASSWORD"  # noqa: S105 - a variable name, not a secret
#: seconds to wait for the server at open, and for a pooled connection later
CONNECT_TIMEOUT_S = 5
POOL_TIMEOUT_S = 10.0
POOL_MAX = 4
#: the advisory lock key under which replicas migrate one at a time ('doorfix' in ASCII)
MIGRATION_LOCK = 0x646F6F72666978
#: tables another tool keeps beside ours in the same database (procrastinate's queue)
FOREIGN_TABLE_PREFIXES = ("procrastinate_",)

_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")

USER_TABLES = (
    "SELECT table_name FROM information_schema.tables "
    "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
)


@lru_cache(maxsize=512)
def to_pyformat(statement: str) -> str:
    """SQLite's ``:name`` parameters as psycopg's ``%(name)s`` (and a literal % doubled)."""
    return _NAMED.sub(r"%(\1)s", statement.replace("%", "%%"))


def public_url(url: str) -> str:
    """The URL as messages show it: scheme, user, host, port and database, no password."""
    try:
        parts = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unparsable URL)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = str(parts.get("host") or "")
    port = f":{parts['port']}" if parts.get("port") and "/" not in host else ""
    where = f"{host}{port}" if "/" not in host else ""
    socket = f"?host={host}" if "/" in host else ""
    return f"postgresql://{user}{where}/{parts.get('dbname') or ''}{socket}"


class _Row:
    """A row read by name or position, as ``sqlite3.Row`` is."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: Mapping[str, int], values: Sequence[Any]) -> None:
        self._index = index
        self._values = values

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, int):
            return self._values[key]
        return self._values[self._index[key]]

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: psycopg.Cursor[Any]) -> RowMaker[_Row]:
    index = {col.name: n for n, col in enumerate(cursor.description or ())}

    def make(values: Sequence[Any]) -> _Row:
        return _Row(index, values)

    return make


class _PgConn:
    """A pooled connection that takes SQLite's ``:name`` statements."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, statement: str, params: Mapping[str, Any] | None = None) -> Any:
        cur = self._conn.cursor(row_factory=_row_factory)
        return cur.execute(to_pyformat(statement), params or {})

    def executemany(self, statement: str, params: Iterable[Mapping[str, Any]]) -> None:
        batch = list(params)
        if batch:
            with self._conn.cursor() as cur:
                cur.executemany(to_pyformat(statement), batch)


class PostgresDatabase:
    """A PostgreSQL journal: a small connection pool, migrated at open."""

    dialect = "postgresql"

    def __init__(self, url: str, *, clock: Clock, read_only: bool = False) -> None:
        """Connect to ``url`` and migrate it, or (``read_only``) check it is current.

        A reader's connections begin every transaction ``READ ONLY`` (psycopg's
        ``read_only``): the server refuses every write, which leaves as JournalError.
        """
        self._clock = clock
        self.read_only = read_only
        self.url = url
        self.where = public_url(url)
        kwargs: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_S}
        password = os.environ.get(ENV_PASSWORD)
        if password:
            kwargs["password"] = password
        #: the full connection string (with the password, if any): never logged
        self.conninfo = conninfo.make_conninfo(url, **kwargs)
        where = f"cannot open journal {self.where} ([journal] url)"
        try:
            with psycopg.connect(self.conninfo, autocommit=False) as conn:
                if read_only:
                    conn.read_only = True
                    tables = {r[0] for r in conn.execute(USER_TABLES)}
                    schema.check_readable(conn, where=self.where, tables=tables)
                else:
                    _migrate(conn, where=where, applied_at=rows.to_text(clock.now()))
        except psycopg.OperationalError as exc:
            raise JournalError(f"{where}: {_reason(exc)}") from None
        except psycopg.Error as exc:
            raise JournalError(f"{where}: {_reason(exc)}") from None
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = ConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=POOL_MAX,
            timeout=POOL_TIMEOUT_S,
            open=True,
            name="doorfix-journal",
            check=ConnectionPool.check_connection,
            configure=_read_only if read_only else None,
        )

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    @contextlib.contextmanager
    def _connection(self, op: str) -> Iterator[psycopg.Connection[Any]]:
        if self._pool is None:
            raise JournalError(f"{op}: journal {self.where} is closed")
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise JournalError(f"{op} failed on journal {self.where}: {exc}") from None
        except psycopg.Error as exc:
            raise JournalError(f"{op} failed on journal {self.where}: {_reason(exc)}") from exc

    @contextlib.contextmanager
    def write(self, op: str) -> Iterator[Conn]:
        # the pool's connection commits at the end of the block, and rolls back on any error
        with self._connection(op) as conn:
            yield _PgConn(conn)

    @contextlib.contextmanager
    def read(self, op: str) -> Iterator[Conn]:
        with self._connection(op) as conn:
            yield _PgConn(conn)

    def check(self) -> str | None:
        """A read and a write probe; None if healthy, else the reason."""
        if self._pool is None:
            return f"journal {self.where} is closed"
        try:
            with self.write("check") as conn:
                conn.execute(sql.WRITE_PROBE, {"at": rows.to_text(self._clock.now())})
        except JournalError as exc:
            return str(exc)
        return None

    def copy_to(self, target: Database) -> None:
        """Every journal table's rows, read in one snapshot, into an in-memory SQLite journal.

        ``REPEATABLE READ`` gives the reads one snapshot, so the copy is consistent while
        other replicas keep writing; the tables are the copy's own (its schema is current),
        in the order they were created, so each row's references are there before it.
        """
        if not isinstance(target, SqliteDatabase):
            raise TypeError("a journal is copied into a SQLite journal")
        tables = target.tables()
        with self.read("scratch_copy") as source, target.write("scratch_copy") as dest:
            source.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            dest.execute("PRAGMA defer_foreign_keys = ON")
            for table, columns in tables:
                names = ", ".join(columns)
                found = source.execute(f"SELECT {names} FROM {table}").fetchall()  # noqa: S608
                if found:
                    dest.executemany(
                        f"INSERT INTO {table} ({names}) "  # noqa: S608
                        f"VALUES ({', '.join(':' + c for c in columns)})",
                        [{c: row[n] for n, c in enumerate(columns)} for row in found],
                    )


def _read_only(conn: psycopg.Connection[Any]) -> None:
    """A reader's pooled connection: every transaction it begins is READ ONLY."""
    conn.read_only = True


def _reason(exc: psycopg.Error) -> str:
    """The server's or libpq's one-line reason, without the connection string."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    lowered = first.lower()
    if "no password supplied" in lowered:
        # a trusting server never asks: a missing password is an error only when it does
        return f"{first} (set ${ENV_PASSWORD} or a ~/.pgpass entry)"
    if "password authentication failed" in lowered:
        # the server's words never hold the password; neither does this hint
        return f"{first} (check ${ENV_PASSWORD} or the ~/.pgpass entry for this server)"
    return first


def ddl(statement: str) -> str:
    """One SQLite DDL statement in PostgreSQL's dialect (identity surrogate keys)."""
    return statement.replace(
        "seq INTEGER PRIMARY KEY", "seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    )


def _migrate(conn: psycopg.Connection[Any], *, where: str, applied_at: str) -> int:
    """Apply the steps the database lacks, in one transaction, one replica at a time."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        migrations = schema.MIGRATIONS
        known = migrations[-1].version
        tables = {r[0] for r in conn.execute(USER_TABLES)}
        ours = {t for t in tables if not t.startswith(FOREIGN_TABLE_PREFIXES)}
        if ours and "schema_version" not in ours:
            raise JournalError(
                f"{where}: a PostgreSQL database but not a doorfix journal (it holds "
                f"{', '.join(sorted(ours)[:8])}); refusing to add tables to it"
            )
        conn.execute(schema.CREATE_SCHEMA_VERSION)
        applied = {int(r[0]) for r in conn.execute(schema.APPLIED_VERSIONS)}
        schema.newer_than_known(applied, where=where, migrations=migrations, key="[journal] url")
        # every step not yet recorded, not only those above the newest (branches' numbers)
        for step in schema.missing(applied, migrations):
            for statement in step.for_dialect("postgresql"):
                conn.execute(statement)
            conn.execute(
                to_pyformat(schema.RECORD_VERSION),
                {
                    "version": step.version,
                    "description": step.description,
                    "applied_at": applied_at,
                },
            )
    return max([*applied, known])
