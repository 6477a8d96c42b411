"""The journal's connection layer: one interface over SQLite and PostgreSQL.

The store's modules (:mod:`~doorfix.agent.journal.store` and its halves) speak to a
:class:`Database`: ``write(op)`` yields a :class:`Conn` inside one transaction (committed at
the end of the block, rolled back on any error), ``read(op)`` a :class:`Conn` for reads.
Both backends turn their driver's errors into :class:`~doorfix.errors.JournalError` naming the
operation and the journal (a file, or a ``postgresql://`` URL without its password).

:func:`~doorfix.agent.journal.base.open_database` chooses by the target: ``postgresql://``
(or ``postgres://``) opens :mod:`~doorfix.agent.journal.postgres`, anything else is a file
(or ``:memory:``) for :mod:`~doorfix.agent.journal.sqlite`. Statements keep SQLite's named
``:name`` parameters; the PostgreSQL connection rewrites them to ``%(name)s`` once per
statement.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

__all__ = ["Conn", "Cursor", "Database", "Row", "is_url"]

#: the URL schemes that select the PostgreSQL journal
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class Row(Protocol):
    """A result row, read by column name or position (``sqlite3.Row`` is one)."""

    def __getitem__(self, key: int | str, /) -> Any: ...


class Cursor(Protocol):
    """What a statement returns: its rows and the count of rows it changed."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Conn(Protocol):
    """A connection inside a read or a write transaction."""

    def execute(self, statement: str, params: Mapping[str, Any] = ..., /) -> Cursor: ...

    def executemany(
        self, statement: str, params: Iterable[Mapping[str, Any]], /
    ) -> Cursor | None: ...


class Database(Protocol):
    """One journal's storage: transactions, a health check, and a name for messages."""

    #: the journal as messages name it: its file, or its URL without the password
    where: str
    #: ``sqlite`` or ``postgresql``
    dialect: str

    def write(self, op: str) -> contextlib.AbstractContextManager[Conn]: ...

    def read(self, op: str) -> contextlib.AbstractContextManager[Conn]: ...

    def check(self) -> str | None: ...

    def copy_to(self, target: Database) -> None:
        """Copy every row of this journal into ``target``, an empty in-memory SQLite one."""
        ...

    def close(self) -> None: ...


def is_url(target: str) -> bool:
    """Whether a journal target is a PostgreSQL URL (else a file or ``:memory:``)."""
    return target.startswith(POSTGRES_SCHEMES)
