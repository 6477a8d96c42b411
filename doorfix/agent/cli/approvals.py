"""``doorfix approvals``, ``approve ID`` and ``refuse ID --note``: supervised mode from a shell.

The same journal records the console writes: who decided, when, with what note. The action
runs at its playbook's next run (the daemon's, or a ``doorfix run``), after its incident is
diagnosed again. Exit codes: 0 decided, 2 an unknown id, an action already decided, run or
lapsed, or a bad config or journal.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated

import typer

from doorfix.agent.cli.reports import _fail, _loaded, _open_journal
from doorfix.agent.cli.session import IN_MEMORY, Loaded
from doorfix.agent.journal.store import Journal
from doorfix.clock import SystemClock
from doorfix.errors import ConfigError, JournalError, StateConflict, UnknownRecord
from doorfix.text import printable

#: the longest note accepted
MAX_NOTE = 2000


def _who(by: str | None) -> str:
    if by and by.strip():
        return printable(by.strip())[:80]
    try:
        return f"{getpass.getuser()} (cli)"
    except (KeyError, OSError):
        return "cli"


def _open_writable(loaded: Loaded) -> Journal:
    """The journal to record a decision in: it must exist (a run made it) and be writable."""
    path = loaded.journal_path
    if path == IN_MEMORY or not Path(path).exists():
        _fail(
            ConfigError(
                f"no journal at {path}: nothing can wait for approval there",
                key="[journal] path",
            )
        )
    try:
        return Journal(path, clock=SystemClock())
    except JournalError as exc:
        _fail(exc)


def _decide(
    ctx: typer.Context, action_id: str, *, approve: bool, by: str | None, note: str | None
) -> None:
    if note is not None and len(note) > MAX_NOTE:
        _fail(ValueError(f"--note: at most {MAX_NOTE} characters"))
    loaded = _loaded(ctx)
    with _open_writable(loaded) as journal:
        try:
            done = journal.decide_approval(action_id, approve=approve, by=_who(by), note=note)
        except (UnknownRecord, StateConflict) as exc:
            _fail(exc)
    verb = "approved" if approve else "refused"
    typer.echo(
        f"{done.remedy} on {printable(done.target)}: {verb} by {done.decided_by}; "
        + (
            "it runs at its playbook's next run if the plan is still the same"
            if approve
            else "it will not run"
        )
    )


def approve(
    ctx: typer.Context,
    action_id: Annotated[str, typer.Argument(help="The id of the action awaiting approval.")],
    note: Annotated[str | None, typer.Option(help="Why (kept in the journal).")] = None,
    by: Annotated[str | None, typer.Option(help="Who approves (default: your login).")] = None,
) -> None:
    """Approve an action that waits for approval (supervised mode)."""
    _decide(ctx, action_id, approve=True, by=by, note=note)


def refuse(
    ctx: typer.Context,
    action_id: Annotated[str, typer.Argument(help="The id of the action awaiting approval.")],
    note: Annotated[str, typer.Option(help="Why it must not run (kept in the journal).")],
    by: Annotated[str | None, typer.Option(help="Who refuses (default: your login).")] = None,
) -> None:
    """Refuse an action that waits for approval: it never runs; its incident needs a person."""
    if not note.strip():
        _fail(ValueError("--note: say why the action is refused"))
    _decide(ctx, action_id, approve=False, by=by, note=note)


def approvals(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
    every: Annotated[bool, typer.Option("--all", help="Decided, ran and lapsed ones too.")] = False,
) -> None:
    """The actions waiting for approval (``--all``: every approval, newest first)."""
    loaded = _loaded(ctx)
    with _open_journal(loaded) as journal:
        rows = journal.approvals(status=None if every else "awaiting_approval")
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in rows], indent=2))
        return
    if not rows:
        typer.echo("No action waits for approval." if not every else "No approval recorded.")
    for r in rows:
        decided = f" by {r.decided_by}" if r.decided_by else ""
        typer.echo(
            printable(
                f"{r.approval_id}  {r.status}{decided}  {r.remedy} {r.target} "
                f"{json.dumps(r.params, sort_keys=True)}  until {r.expires_at:%Y-%m-%d %H:%M}Z"
                + (f"  note: {r.note}" if r.note else "")
            )
        )


def register(app: typer.Typer) -> None:
    """Add ``approvals``, ``approve`` and ``refuse`` to the doorfix app."""
    app.command("approvals")(approvals)
    app.command("approve")(approve)
    app.command("refuse")(refuse)
