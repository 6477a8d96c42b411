"""The PostgreSQL journal's own rules: what it refuses at open, and what replicas share.

The behaviour both backends share is pinned by test_journal.py, parametrized over both.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import structlog
from support.pg_password import password_server
from typer.testing import CliRunner

from doorfix.agent.cli.app import app
from doorfix.agent.journal.lock import DbRunLock
from doorfix.agent.journal.postgres import ENV_PASSWORD, to_pyformat
from doorfix.agent.journal.schema import MIGRATIONS
from doorfix.agent.journal.store import Journal
from doorfix.clock import ManualClock

START = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
SECRETS = {
    "DOORFIX_CLOUD_CLIENT_SECRET": "s-1",
    "DOORFIX_ACA_API_KEY": "s-2",
    "DOORFIX_CLP_CLIENT_SECRET": "s-3",
}
URLS = {k: f"http://127.0.0.1:9/{k}" for k in ("cloud", "aca", "clp", "clp_identity")}


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures structlog onto CliRunner's stderr; put it back after each test."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "doorfix.toml"
    path.write_text(
        f'[cloud]\nbase_url = "{URLS["cloud"]}"\n[aca]\nbase_url = "{URLS["aca"]}"\n'
        f'[clp]\nbase_url = "{URLS["clp"]}"\nidentity_url = "{URLS["clp_identity"]}"\n'
        f'[journal]\nurl = "{url}"\n',
        encoding="utf-8",
    )
    return path


#: the commands that open a PostgreSQL journal: a run, a fleet replica, the fleet's view
COMMANDS = {"run": ["run", "door-logs"], "daemon": ["daemon"], "fleet": ["fleet"]}


def run_cli(
    tmp_path: Path, url: str, command: str = "run", env: dict[str, str | None] | None = None
) -> tuple[int, str]:
    args = ["--config", str(config(tmp_path, url)), *COMMANDS[command]]
    # no password but what the test gives: none from the environment, no ~/.pgpass
    quiet: dict[str, str | None] = {
        ENV_PASSWORD: None,
        "HOME": str(tmp_path),
        "PGPASSFILE": str(tmp_path / "no-pgpass"),
        "PGPASSWORD": None,
    }
    result = CliRunner().invoke(app, args, env={**SECRETS, **quiet, **(env or {})})
    return result.exit_code, result.stderr


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A short folder for a Unix socket (a socket's path must fit in 107 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="doorfix-pw."))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_named_parameters_become_psycopg_placeholders() -> None:
    assert to_pyformat("SELECT a FROM t WHERE b = :b AND c IN (:c0, :c1)") == (
        "SELECT a FROM t WHERE b = %(b)s AND c IN (%(c0)s, %(c1)s)"
    )
    # a cast, a time of day and a literal percent are left as they are
    assert to_pyformat("SELECT x::text, '10:30', 'a%' FROM t") == (
        "SELECT x::text, '10:30', 'a%%' FROM t"
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unreachable_database_exits_2_naming_the_key(
    tmp_path: Path, socket_dir: Path, command: str
) -> None:
    # a socket folder with no server in it
    code, stderr = run_cli(tmp_path, f"postgresql://doorfix@/doorfix?host={socket_dir}", command)
    assert code == 2
    line = one_line(stderr)
    assert "[journal] url" in line
    assert "cannot open journal" in line


@pytest.mark.parametrize("command", COMMANDS)
def test_a_server_asking_for_a_password_none_was_given_for_names_where_to_put_it(
    tmp_path: Path, socket_dir: Path, command: str
) -> None:
    # a server that trusts the connection needs none (the tests' own cluster): a missing
    # password is an error only when the server asks for one
    with password_server(socket_dir) as server:
        code, stderr = run_cli(tmp_path, server.url, command)
    assert code == 2
    line = one_line(stderr)
    assert "[journal] url" in line
    assert "no password supplied" in line
    assert f"${ENV_PASSWORD}" in line
    assert "pgpass" in line
    assert server.passwords == [None]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_refused_password_names_the_key_and_is_never_printed(
    tmp_path: Path, socket_dir: Path, command: str
) -> None:
    secret = "c0rrect-h0rse-battery"
    with password_server(socket_dir) as server:
        code, stderr = run_cli(tmp_path, server.url, command, env={ENV_PASSWORD: secret})
    assert server.passwords == [secret]  # it was sent, from $DOORFIX_JOURNAL_PASSWORD
    assert code == 2
    line = one_line(stderr)
    assert "[journal] url" in line
    assert "password authentication failed" in line
    assert f"${ENV_PASSWORD}" in line
    assert secret not in stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_a_journal_from_a_newer_doorfix_exits_2(tmp_path: Path, pg_url: str, command: str) -> None:
    Journal(pg_url, clock=ManualClock(START)).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO schema_version (version, description, applied_at) "
            "VALUES (999, 'from the future', '2027-01-01T00:00:00Z')"
        )
    code, stderr = run_cli(tmp_path, pg_url, command)
    assert code == 2
    line = one_line(stderr)
    assert "[journal] url" in line
    assert "schema version 999 is newer" in line


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unknown_version_below_the_highest_exits_2(
    tmp_path: Path, pg_url: str, command: str
) -> None:
    Journal(pg_url, clock=ManualClock(START)).close()
    known = {step.version for step in MIGRATIONS}
    stranger = min(set(range(1, max(known))) - known)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO schema_version (version, description, applied_at) "
            "VALUES (%s, 'another branch', '2027-01-01T00:00:00Z')",
            (stranger,),
        )
    code, stderr = run_cli(tmp_path, pg_url, command)
    assert code == 2
    line = one_line(stderr)
    assert "[journal] url" in line
    assert f"schema version(s) {stranger} this doorfix does not know" in line


@pytest.mark.parametrize("command", COMMANDS)
def test_another_applications_database_is_not_taken_over(
    tmp_path: Path, pg_url: str, command: str
) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE customers (id integer)")
    code, stderr = run_cli(tmp_path, pg_url, command)
    assert code == 2
    line = one_line(stderr)
    assert "[journal] url" in line
    assert "not a doorfix journal" in line
    with psycopg.connect(pg_url) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        }
    assert tables == {"customers"}  # nothing added


def test_replicas_opening_together_migrate_once(pg_url: str) -> None:
    journals = [Journal(pg_url, clock=ManualClock(START)) for _ in range(3)]
    for journal in journals:
        journal.close()
    with psycopg.connect(pg_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version")]
    assert versions == sorted(set(versions))


def test_a_run_lock_row_is_taken_over_only_once_its_heartbeat_is_stale(pg_url: str) -> None:
    clock = ManualClock(START)
    with Journal(pg_url, clock=clock) as one, Journal(pg_url, clock=clock) as two:
        lock_one, lock_two = one.run_lock, two.run_lock
        assert isinstance(lock_one, DbRunLock)
        assert isinstance(lock_two, DbRunLock)
        lock_one.stale_after = lock_two.stale_after = 30
        row = DbRunLock.row("cloud")
        first = lock_one.try_acquire("door-logs", name=row)
        assert first is not None
        assert lock_two.try_acquire("license-renewal", name=row) is None
        # another scope's row is another lock
        assert lock_two.try_acquire("aca-rejections", name=DbRunLock.row("aca-clp")) is not None
        clock.advance(timedelta(seconds=20))
        assert lock_one.beat(row)
        clock.advance(timedelta(seconds=20))
        assert lock_two.try_acquire("license-renewal", name=row) is None
        clock.advance(timedelta(seconds=31))
        taken = lock_two.try_acquire("license-renewal", name=row)
        assert taken == first + 1
        # the dead holder is fenced: its late heartbeat and release match no row
        assert not lock_one.beat(row)
        assert not lock_one.release(row)
        assert lock_two.holder_of(row)["holder"] == lock_two.holder
