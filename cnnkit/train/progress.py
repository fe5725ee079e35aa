"""Training progress on stderr: a rich progress bar on a terminal, one plain line per epoch otherwise."""
from __future__ import annotations

import sys

__all__ = ["TrainingProgress"]


class TrainingProgress:
    """Per-batch bar (batches/s, running loss) and per-epoch summary lines.

    Args:
        bar: ``True``/``False`` to force the bar on or off; ``None`` (default) shows it only when
            stderr is a terminal, so logs redirected to a file hold no control codes.
        log: where epoch lines go: ``True`` → stderr, ``False`` → nowhere, a callable → called with
            each line.
    """

    def __init__(self, bar: bool | None = None, log=True):
        stream = sys.stderr
        self.bar = bool(bar) if bar is not None else bool(getattr(stream, "isatty", lambda: False)())
        self._log = log
        self._progress = None
        self._task = None

    def __enter__(self):
        if self.bar:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn)
            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(),
                console=Console(file=sys.stderr), transient=True)
            self._progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)
            self._progress = None
        return False

    def start_epoch(self, epoch: int, epochs: int, batches: int | None) -> None:
        if self._progress is not None:
            if self._task is not None:
                self._progress.remove_task(self._task)
            self._task = self._progress.add_task(f"epoch {epoch}/{epochs}", total=batches, rate="", loss="-")

    def batch(self, running_loss: float) -> None:
        if self._progress is not None:
            task = self._progress.tasks[-1]
            speed = task.speed
            self._progress.update(self._task, advance=1, loss=f"{running_loss:.4f}",
                                  rate=f"{speed:.1f} batch/s" if speed else "")

    def line(self, text: str) -> None:
        """An epoch summary (kept above the bar on a terminal)."""
        if self._log is False or self._log is None:
            return
        if callable(self._log):
            self._log(text)
        elif self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=sys.stderr, flush=True)
