"""Reading the journal file of a doorfix process that is still running (read-only)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def started_actions(journal: Path) -> list[tuple[str, str]]:
    """(remedy, target) of the actions whose intent is recorded without a result."""
    if not journal.exists():
        return []
    try:
        with sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=1) as conn:
            return list(conn.execute("SELECT remedy, target FROM actions WHERE status = 'started'"))
    except sqlite3.OperationalError:
        return []  # the schema is not there yet
