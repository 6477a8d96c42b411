"""A PostgreSQL server for the tests: CI's (``$DOORFIX_TEST_PG_DSN``), or one started here.

:func:`server_dsn` returns the DSN of a server the tests may create databases on: the one
``.ci/run`` exports, else a throwaway cluster this process starts with ``.ci/postgres`` (and
stops at exit), else None with the reason, so the PostgreSQL tests skip saying why.
:func:`fresh_database` creates an empty database and returns its URL.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg
from psycopg import conninfo

ENV_DSN = "DOORFIX_TEST_PG_DSN"
SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "postgres"

_server: tuple[str | None, str] | None = None


def server_dsn() -> tuple[str | None, str]:
    """(DSN, "") of a usable server, or (None, why there is none)."""
    global _server  # noqa: PLW0603 - one server per test process
    if _server is None:
        _server = _find_server()
    return _server


def _find_server() -> tuple[str | None, str]:
    dsn = os.environ.get(ENV_DSN)
    if dsn:
        return dsn, ""
    if not SCRIPT.exists():
        return None, f"no ${ENV_DSN} and no {SCRIPT} to start a cluster"
    # in /tmp itself: the `postgres` user must reach the folder (pytest's tmp is root's only)
    folder = tempfile.mkdtemp(prefix="doorfix-test-pg.")
    started = subprocess.run(
        [str(SCRIPT), "start", folder], capture_output=True, text=True, check=False, timeout=60
    )
    if started.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        reason = (started.stderr.strip().splitlines() or ["failed"])[-1]
        return None, f"no ${ENV_DSN} and no PostgreSQL cluster could be started: {reason}"

    def stop() -> None:
        subprocess.run([str(SCRIPT), "stop", folder], capture_output=True, check=False)
        shutil.rmtree(folder, ignore_errors=True)

    atexit.register(stop)
    return started.stdout.strip().splitlines()[-1], ""


def fresh_database(dsn: str) -> str:
    """An empty schema on the server's database; a URL whose search_path is that schema.

    A schema, not a database: CREATE DATABASE copies a template and takes about a second,
    a schema a few milliseconds, and each test's journal (and queue) is as much its own.
    """
    name = f"doorfix_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    parts = conninfo.conninfo_to_dict(dsn)
    query = "&".join(f"{k}={v}" for k, v in parts.items() if k not in ("dbname",) and v)
    return f"postgresql:///{parts.get('dbname', 'doorfix')}?{query}&options=-csearch_path%3D{name}"


def schema_of(url: str) -> str:
    """The schema a :func:`fresh_database` URL works in."""
    options = str(conninfo.conninfo_to_dict(url).get("options", ""))
    return options.rsplit("=", 1)[-1]


def drop_database(dsn: str, url: str) -> None:
    """Drop the schema :func:`fresh_database` made, and all it holds."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema_of(url)}" CASCADE')
