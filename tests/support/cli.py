"""The CLI as a person runs it: ``python -m doorfix`` in a subprocess, 80 columns wide."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support.processes import DOORFIX, sandbox_env

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
