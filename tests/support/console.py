"""``doorfix demo --console`` as a subprocess, for the browser tests: its address and tokens."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
VIEW = "browser-view-token-0123"
APPROVE = "browser-approve-token-0123"
#: the README's screenshot
DOCS_SHOT = Path(__file__).resolve().parents[2] / "docs" / "console-needs-a-person.png"


@dataclass
class DemoConsole:
    """The demo's process and the console's address."""

    proc: subprocess.Popen[str]
    url: str = ""
    out: list[str] = field(default_factory=list)


def read_console(demo: DemoConsole) -> None:
    """Collect the demo's stdout; note the console's address when it is printed."""
    assert demo.proc.stdout is not None
    for line in demo.proc.stdout:
        demo.out.append(line)
        found = re.search(r"console: (http://127\.0\.0\.1:\d+)/", line)
        if found:
            demo.url = found.group(1)
