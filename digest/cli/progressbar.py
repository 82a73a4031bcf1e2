"""A rich progress bar for long CLI work, drawn only on a terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from digest.cli.app import on_terminal

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class ProgressBar:
    """A rich progress bar on a terminal; silent otherwise.

    ``start`` begins a new stage (a new bar line); ``advance`` moves the current one.
    """

    def __init__(self) -> None:
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> ProgressBar:
        if on_terminal():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self._bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
            )
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def start(self, label: str, total: int) -> None:
        if self._bar is not None:
            if self._task is not None:
                # The previous stage is done: show it full rather than where it stopped.
                self._bar.update(self._task, completed=self._bar.tasks[-1].total)
            self._task = self._bar.add_task(label, total=total)

    def advance(self, n: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, n)
