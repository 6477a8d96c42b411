"""Progress of a long one-shot run: a rich display on a terminal, silence everywhere else.

The engine sees only the small :class:`Progress` protocol: it names each stage (with a total
when it knows one) and advances it. ``doorfix run`` opens :func:`progress_display` around the
run; the daemon, tests and ``--json`` pipes get :data:`NO_PROGRESS`, which does nothing.

    with progress_display() as progress:
        report = await run_once(agent, playbook, progress=progress)

    # in the engine
    progress.stage("reading door logs")              # total unknown: a spinner and a count
    progress.advance(len(page))
    progress.stage("working incidents", total=len(candidates))
    progress.advance()
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichBar


class Progress(Protocol):
    """What the engine calls to report progress; every call is cheap and never raises."""

    def stage(self, name: str, *, total: int | None = None) -> None:
        """Start a stage (closing the previous one); ``total`` None when unknown."""
        ...

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more items done in the current stage."""
        ...

    def set_total(self, total: int | None) -> None:
        """Set or change the current stage's total once it is known."""
        ...


class NoProgress:
    """The progress of a run nobody watches: every call does nothing."""

    def stage(self, name: str, *, total: int | None = None) -> None:
        """Do nothing."""

    def advance(self, n: int = 1) -> None:
        """Do nothing."""

    def set_total(self, total: int | None) -> None:
        """Do nothing."""


#: The shared do-nothing progress (it has no state).
NO_PROGRESS: Progress = NoProgress()


class RichProgress:
    """Stages as rich progress lines on a console; transient, so the report prints clean."""

    def __init__(self, console: Console) -> None:
        self._bar = RichBar(
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            # a stage can advance thousands of times a second; redraw at a human pace
            refresh_per_second=8,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> RichProgress:
        self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close_stage()
        self._bar.stop()

    def stage(self, name: str, *, total: int | None = None) -> None:
        """Close the current stage and start ``name``."""
        self._close_stage()
        self._open(name, total)

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more items of the current stage (a stage is opened if none is)."""
        task = self._task if self._task is not None else self._open("working", None)
        self._bar.advance(task, n)

    def set_total(self, total: int | None) -> None:
        """Set the current stage's total."""
        if self._task is not None:
            self._bar.update(self._task, total=total)

    @property
    def stages(self) -> list[tuple[str, float, float | None]]:
        """(name, completed, total) of every stage so far, for tests and summaries."""
        return [(t.description, t.completed, t.total) for t in self._bar.tasks]

    def _open(self, name: str, total: int | None) -> TaskID:
        self._task = self._bar.add_task(name, total=total)
        return self._task

    def _close_stage(self) -> None:
        if self._task is None:
            return
        task = self._bar.tasks[self._task]
        # an open-ended stage ends at what it counted, so the bar shows it complete
        self._bar.update(self._task, total=task.completed if task.total is None else task.total)
        self._task = None


@contextmanager
def progress_display(
    console: Console | None = None, *, enabled: bool | None = None
) -> Iterator[Progress]:
    """A rich progress display on ``console`` (stderr) when it is a terminal, else none."""
    out = console or Console(stderr=True)
    show = out.is_terminal if enabled is None else enabled
    if not show:
        yield NO_PROGRESS
        return
    with RichProgress(out) as progress:
        yield progress
