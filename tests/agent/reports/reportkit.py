"""Helpers of the report tests: the demo harness, a real webhook receiver, a CLI app.

The demo harness is ``support.demo``'s (the demo world behind the sandbox app in process, an
agent on a manual clock) with its journal in a file, so the CLI can read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import structlog
import support.demo
import typer

from doorfix.agent.cli.reports import register
from doorfix.agent.engine.report import RunReport
from doorfix.agent.engine.run import run_once
from doorfix.agent.engine.state import Agent
from doorfix.agent.journal.store import Journal
from doorfix.clock import ManualClock


@dataclass
class Demo:
    """The demo world and an agent on it, with a journal file."""

    clock: ManualClock
    agent: Agent
    journal_path: Path
    reports: list[RunReport] = field(default_factory=list)

    @property
    def journal(self) -> Journal:
        """The agent's journal."""
        return self.agent.journal

    async def run_all(self, *, dry_run: bool = False) -> list[RunReport]:
        """One run of each playbook (logs captured, so the test output stays quiet)."""
        out = []
        with structlog.testing.capture_logs():
            for playbook in support.demo.PLAYBOOKS:
                out.append(await run_once(self.agent, playbook, dry_run=dry_run))
        self.reports += out
        return out


def make_demo(journal_path: Path) -> Demo:
    """A fresh demo world, and an agent with a journal at ``journal_path``."""
    built = support.demo.make_demo(journal=journal_path)
    return Demo(built.clock, built.agent, journal_path)


def cli_app() -> typer.Typer:
    """A doorfix-like app: the root ``--config`` callback, and :func:`register`'s commands."""
    app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

    @app.callback()
    def root(
        ctx: typer.Context,
        config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
    ) -> None:
        ctx.obj = {"config": config}

    register(app)
    return app


def write_config(path: Path, *, journal: Path, urls: dict[str, str] | None = None) -> Path:
    """A config file pointing at ``urls`` (a served sandbox) with a journal file."""
    lines = []
    if urls:
        lines += [
            f'[cloud]\nbase_url = "{urls["cloud"]}"',
            f'[aca]\nbase_url = "{urls["aca"]}"',
            f'[clp]\nbase_url = "{urls["clp"]}"\nidentity_url = "{urls["clp_identity"]}"',
        ]
    lines.append(f'[journal]\npath = "{journal}"')
    path.write_text("\n".join(lines) + "\n")
    return path
