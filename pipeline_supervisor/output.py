"""Children's stdout and stderr through start_pipeline.py: every line names its service."""

from __future__ import annotations

import re
import sys
import threading
from typing import IO

_WRITE_LOCK = threading.Lock()
# A status line redrawn in place on a terminal (pipeline_supervisor/display.py): every other
# line is written above it, so it stays the last line of the screen.
_STICKY: tuple[IO[str], str] | None = None
_CLEAR = "\r\x1b[K"


def sticky(out: IO[str], line: str | None) -> None:
    """Redraw `line` in place as the terminal's last line; None ends it (moves below it)."""
    global _STICKY
    with _WRITE_LOCK:
        if line is None:
            if _STICKY is not None:
                _STICKY[0].write("\n")
                _STICKY[0].flush()
            _STICKY = None
            return
        out.write(_CLEAR + line)
        out.flush()
        _STICKY = (out, line)


def emit(line: str, out: IO[str]) -> None:
    """Write one whole line to `out`, above the sticky status line when there is one."""
    with _WRITE_LOCK:
        _write_above(line, out)


def _write_above(line: str, out: IO[str]) -> None:
    if _STICKY is None:
        print(line, file=out, flush=True)
        return
    status_out, status = _STICKY
    status_out.write(_CLEAR)
    status_out.flush()
    print(line, file=out, flush=True)
    status_out.write(status)
    status_out.flush()


def labelled(name: str, line: str) -> str:
    """`line` as it is when it already names `name` (a log line, a settings error), else prefixed.

    Log lines carry the service after their level (shared.service.configure_logging); a
    traceback, a library's own print or librdkafka's stderr do not.
    """
    own_log_line = re.match(rf"\S+ \S+ [A-Z]+ {re.escape(name)} ", line)
    if own_log_line or line.startswith(f"{name}: "):
        return line
    return f"{name}: {line}"


def forward(name: str, stream: IO[bytes], to_stderr: bool) -> threading.Thread:
    """Copy `stream` line by line, labelled, to our stderr (or stdout) until it ends."""

    def copy() -> None:
        with stream:
            for raw in iter(stream.readline, b""):
                line = labelled(name, raw.decode(errors="replace").rstrip("\r\n"))
                out = sys.stderr if to_stderr else sys.stdout  # looked up now: tests swap them
                try:
                    with _WRITE_LOCK:
                        _write_above(line, out)
                except (OSError, ValueError):
                    pass  # our own output is gone (closed pipe): keep draining the child's

    thread = threading.Thread(target=copy, name=f"output-{name}", daemon=True)
    thread.start()
    return thread
