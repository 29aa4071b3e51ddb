"""Where start_pipeline.py's periodic status line goes: redrawn in place on a terminal; in a file
(a log) written only when something changed, or once a minute as a sign of life.

A quiet pipeline used to write the same line every 5 s into its log; now the log holds the
changes. "Changed" compares each service's state, red reasons and notes (its signature), not
its rates: a rate moves every round on a busy pipeline and would defeat the point.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from typing import TextIO

from pipeline_supervisor import output
from pipeline_supervisor.status import ServiceView

FILE_EVERY_S = 60.0


def signature(views: Sequence[ServiceView]) -> tuple[object, ...]:
    """What must change for a file to get a new status line: states, red reasons, notes."""
    return tuple((view.name, view.state, view.red_reasons, view.notes) for view in views)


class StatusDisplay:
    """Shows status lines on `out`: in place on a terminal, on change (or a minute) in a file."""

    def __init__(
        self,
        out: TextIO,
        *,
        tty: bool | None = None,
        every_s: float = FILE_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._out = out
        self._tty = _isatty(out) if tty is None else tty
        self._every_s = every_s
        self._clock = clock
        self._last: tuple[object, ...] | None = None
        self._last_at = float("-inf")

    def show(self, line: str, views: Sequence[ServiceView]) -> bool:
        """Show `line` (the status of `views`); True when it was written."""
        if self._tty:
            # One screen row: "\r" + clear-line cannot take back a line the terminal wrapped.
            width = shutil.get_terminal_size().columns
            output.sticky(self._out, line if len(line) < width else line[: width - 2] + "…")
            return True
        now = self._clock()
        mark = signature(views)
        if mark == self._last and now - self._last_at < self._every_s:
            return False
        self._last, self._last_at = mark, now
        output.emit(line, self._out)
        return True

    def close(self) -> None:
        """Leave the terminal's status line in place and move below it."""
        if self._tty:
            output.sticky(self._out, None)


def _isatty(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False
