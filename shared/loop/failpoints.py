"""Named points in the loop where a test can act; nothing happens unless a hook is installed.

Production code never installs one: only a test entry point does (tests/failpoint_service.py,
which runs a service with a hook that SIGKILLs the process, stalls it, or moves its position at
a named point), so no setting can turn a failpoint on in a real deployment.

Points: `after_process` (the handler's process returned: a batch computed in place has
changed the states already), `after_copy` (inside the batch's transaction, rows written, offsets
not yet),
`after_commit` (right after COMMIT returned), `before_poll` (between batches; the context has
the Kafka consumer); `reassign` (partitions that awaited their offsets are about to be
assigned again at them); the alert relay's `relay_after_publish` (Kafka confirmed, `published_at`
not yet set).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Hook = Callable[..., None]
_hook: Hook | None = None


def install(hook: Hook | None) -> None:
    """Install the test hook (None removes it)."""
    global _hook
    _hook = hook


def reached(name: str, **context: Any) -> None:
    if _hook is not None:
        _hook(name, **context)
