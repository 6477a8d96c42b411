"""The progress display: drawn on a terminal, silent in a pipe, harmless to call anywhere."""

from __future__ import annotations

import io

from rich.console import Console

from doorfix.agent.engine.progress import NO_PROGRESS, RichProgress, progress_display


def console(*, terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=100), out


def test_a_terminal_sees_each_stage_and_its_count() -> None:
    screen, out = console(terminal=True)
    with progress_display(screen) as progress:
        assert isinstance(progress, RichProgress)
        progress.stage("reading door logs")
        progress.advance(500)
        progress.advance(250)
        progress.stage("working incidents", total=3)
        progress.advance()
        progress.advance(2)
        stages = progress.stages
    # the open-ended stage closes at what it counted; the counted one at its total
    assert stages == [("reading door logs", 750, 750), ("working incidents", 3, 3)]
    drawn = out.getvalue()
    assert "working incidents" in drawn
    assert "3/3" in drawn


def test_a_pipe_sees_nothing() -> None:
    pipe, out = console(terminal=False)
    with progress_display(pipe) as progress:
        assert progress is NO_PROGRESS
        progress.stage("reading door logs", total=10)
        progress.advance(10)
        progress.set_total(20)
    assert out.getvalue() == ""


def test_forcing_it_on_or_off_overrides_the_terminal_check() -> None:
    pipe, _ = console(terminal=False)
    with progress_display(pipe, enabled=True) as progress:
        assert isinstance(progress, RichProgress)
        progress.advance(5)  # no stage named yet: one is opened
        progress.set_total(8)
        assert progress.stages == [("working", 5, 8)]
    screen, out = console(terminal=True)
    with progress_display(screen, enabled=False) as progress:
        progress.advance(5)
    assert out.getvalue() == ""
