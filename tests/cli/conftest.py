"""The CLI as a person runs it: ``python -m doorfix`` in a subprocess, 80 columns wide."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support.processes import DOORFIX, sandbox_env

from doorfix.agent.journal.store import Journal
from doorfix.clock import SystemClock

#: the width of the terminal the text views are read in
COLUMNS = "80"


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``doorfix ARGS`` to its end: exit code, stdout and stderr as text."""
    base = {**sandbox_env(), "COLUMNS": COLUMNS, "NO_COLOR": "1"}
    # a config in the environment or the working directory would change what is tested
    base.pop("DOORFIX_CONFIG", None)
    return subprocess.run(
        [*DOORFIX, *args],
        env={**base, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_clean_error(result: subprocess.CompletedProcess[str], *names: str) -> str:
    """Exit 2, one line on stderr naming each of ``names``, no traceback, no box; the line."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert not any(c in result.stderr for c in "╭│╰"), result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


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
