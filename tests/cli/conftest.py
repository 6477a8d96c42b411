"""Fixtures of the CLI tests (helpers to run the CLI are in ``support.cli``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from doorfix.agent.journal.store import Journal
from doorfix.clock import SystemClock


@pytest.fixture
def journal_config(tmp_path: Path) -> Path:
    """A config on the embedded sandbox whose journal file exists (empty)."""
    journal = tmp_path / "journal.sqlite3"
    Journal(journal, clock=SystemClock()).close()
    config = tmp_path / "doorfix.toml"
    config.write_text(
        f'[journal]\npath = "{journal}"\n[sandbox]\nembedded = true\n', encoding="utf-8"
    )
    return config
