"""The PostgreSQL journal's own rules: what it refuses at open, and what replicas share.

The behaviour both backends share is pinned by test_journal.py, parametrized over both.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import structlog
from typer.testing import CliRunner

from doorfix.agent.cli.app import app
from doorfix.agent.journal.lock import DbRunLock
from doorfix.agent.journal.postgres import to_pyformat
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


def run_cli(tmp_path: Path, url: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["--config", str(config(tmp_path, url)), "run", "door-logs"], env=SECRETS
    )
    return result.exit_code, result.stderr


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


def test_an_unreachable_database_exits_2_naming_the_key(tmp_path: Path) -> None:
    url = f"postgresql://doorfix@/doorfix?host={tmp_path / 'no-server-here'}"
    code, stderr = run_cli(tmp_path, url)
    assert code == 2
    line = one_line(stderr)
    assert "[journal] url" in line
    assert "cannot open journal" in line


def test_a_journal_from_a_newer_doorfix_exits_2(tmp_path: Path, pg_url: str) -> None:
    Journal(pg_url, clock=ManualClock(START)).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO schema_version (version, description, applied_at) "
            "VALUES (999, 'from the future', '2027-01-01T00:00:00Z')"
        )
    code, stderr = run_cli(tmp_path, pg_url)
    assert code == 2
    line = one_line(stderr)
    assert "[journal] url" in line
    assert "schema version 999 is newer" in line


def test_another_applications_database_is_not_taken_over(tmp_path: Path, pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE customers (id integer)")
    code, stderr = run_cli(tmp_path, pg_url)
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
        first = lock_one.try_acquire("door-logs")
        assert first is not None
        assert lock_two.try_acquire("aca-rejections") is None
        clock.advance(timedelta(seconds=20))
        assert lock_one.beat()
        clock.advance(timedelta(seconds=20))
        assert lock_two.try_acquire("aca-rejections") is None
        clock.advance(timedelta(seconds=31))
        taken = lock_two.try_acquire("aca-rejections")
        assert taken == first + 1
        # the dead holder is fenced: its late heartbeat and release match no row
        assert not lock_one.beat()
        assert not lock_one.release()
        assert lock_two.holder_of()["holder"] == lock_two.holder
