"""``report`` and ``history`` only read the journal: a manager with read access can use them."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import cli

from doorfix.agent.journal.store import Journal
from doorfix.clock import ManualClock, SystemClock
from doorfix.errors import JournalError

READERS = (
    ["report", "--format", "json"],
    ["report"],
    ["history", "--user", "u-1", "--format", "json"],
    ["history", "--user", "u-1"],
)


def _journal_with_an_incident(path: Path) -> None:
    clock = ManualClock(datetime.now(UTC) - timedelta(hours=1))
    with Journal(path, clock=clock) as journal:
        run = journal.start_run("aca-rejections", dry_run=False)
        row = journal.open_incident(
            key="k",
            cause="aca.clp_out_of_sync",
            subject={"center_id": "c-1", "user_id": "u-1", "lock_id": "l-1"},
            run_id=run,
            event_ids=["ev-1"],
            evidence={"lock_name": "701"},
        )
        journal.set_outcome(row.incident_id, outcome="needs_human", run_id=run, note="n")
        journal.finish_run(run, status="completed", counts={"needs_human": 1})


@pytest.fixture
def shared(tmp_path: Path) -> tuple[Path, Path]:
    """(config, journal): a journal with one incident, and a config naming it."""
    journal = tmp_path / "data" / "journal.sqlite3"
    journal.parent.mkdir()
    _journal_with_an_incident(journal)
    config = tmp_path / "doorfix.toml"
    config.write_text(
        f'[journal]\npath = "{journal}"\n[sandbox]\nembedded = true\n', encoding="utf-8"
    )
    return config, journal


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_readers_work_while_a_writer_holds_the_journal(shared: tuple[Path, Path]) -> None:
    """A daemon in the middle of a write: a reader neither waits for it nor fails."""
    config, journal = shared
    writer = sqlite3.connect(journal, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE runs SET counts = counts")
        for args in READERS:
            result = cli("--config", str(config), *args, timeout=30)
            assert result.returncode == 0, (args, result.stderr)
            assert "u-1" in result.stdout
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_readers_leave_a_shared_journal_exactly_as_it_was(shared: tuple[Path, Path]) -> None:
    """A journal its owner shared read-only (0640): a reader changes neither mode nor byte."""
    config, journal = shared
    journal.chmod(0o640)
    before = _digest(journal)
    for args in READERS:
        result = cli("--config", str(config), *args)
        assert result.returncode == 0, (args, result.stderr)
    assert stat.S_IMODE(journal.stat().st_mode) == 0o640
    assert _digest(journal) == before
    data = json.loads(cli("--config", str(config), "report", "--format", "json").stdout)
    assert data["counts"] == {"needs_human": 1}


@pytest.mark.skipif(
    os.geteuid() == 0, reason="root reads and writes whatever the modes say: chmod cannot restrict"
)
def test_readers_work_where_neither_file_nor_directory_is_writable(
    shared: tuple[Path, Path],
) -> None:
    config, journal = shared
    journal.chmod(0o400)
    journal.parent.chmod(0o500)
    try:
        for args in READERS:
            result = cli("--config", str(config), *args)
            assert result.returncode == 0, (args, result.stderr)
            assert "u-1" in result.stdout
    finally:
        journal.parent.chmod(0o700)
        journal.chmod(0o600)


def test_a_read_only_journal_reads_and_refuses_every_write(shared: tuple[Path, Path]) -> None:
    _config, path = shared
    with Journal(path, clock=SystemClock(), read_only=True) as journal:
        found = journal.incidents(subject={"user_id": "u-1"})
        assert [row.subject["user_id"] for row in found] == ["u-1"]
        with pytest.raises(JournalError):
            journal.start_run("door-logs", dry_run=False)


def test_a_read_only_open_of_no_journal_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.sqlite3"
    with pytest.raises(JournalError, match="no such file"):
        Journal(missing, clock=SystemClock(), read_only=True)
    assert list(tmp_path.iterdir()) == []
