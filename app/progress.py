"""Progress for a person at a terminal: rich bars and spinners on standard error.

Standard output stays the command's data (ids, JSON, a summary), so a pipe or a script reads only that.
Nothing is drawn unless standard error is a terminal: a log file would get escape codes and a snapshot
per refresh. (``TTY_COMPATIBLE=1`` makes rich treat it as one anyway.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


@dataclass(frozen=True, slots=True)
class Tracker:
    """One bar (or spinner) of a running ``Progress``."""

    _progress: Progress
    _task: TaskID

    def advance(self, steps: int = 1) -> None:
        self._progress.advance(self._task, steps)

    def show(self, completed: int, note: str) -> None:
        self._progress.update(self._task, completed=completed, description=note)


@contextmanager
def tracked(description: str, total: int) -> Iterator[Tracker]:
    """A bar counting ``total`` steps; it stays on screen when done, so the count is still readable."""
    columns: list[ProgressColumn] = [
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    with _progress(columns, transient=False) as progress:
        yield Tracker(progress, progress.add_task(description, total=total))


@contextmanager
def waiting(description: str) -> Iterator[None]:
    """A spinner while something with no countable steps runs; it leaves no trace when done."""
    columns: list[ProgressColumn] = [
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        TimeElapsedColumn(),
    ]
    with _progress(columns, transient=True) as progress:
        progress.add_task(description, total=None)
        yield


@contextmanager
def _progress(columns: list[ProgressColumn], *, transient: bool) -> Iterator[Progress]:
    console = Console(stderr=True)
    with Progress(*columns, console=console, transient=transient, disable=not console.is_terminal) as progress:
        yield progress
