"""Children's stdout and stderr through start_pipeline.py: every line names its service."""

from __future__ import annotations

import re
import sys
import threading
from typing import IO

_WRITE_LOCK = threading.Lock()


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
                        print(line, file=out, flush=True)
                except (OSError, ValueError):
                    pass  # our own output is gone (closed pipe): keep draining the child's

    thread = threading.Thread(target=copy, name=f"output-{name}", daemon=True)
    thread.start()
    return thread
