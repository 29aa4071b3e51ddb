"""Process trees from /proc: a service and the processes it started (fit workers, forkserver)."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def stat_fields() -> dict[int, list[str]]:
    """Each process's /proc/<pid>/stat fields after the command name (field 3 on)."""
    found: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            found[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
    return found


def process_tree(pid: int, fields: dict[int, list[str]] | None = None) -> set[int]:
    """`pid` and every process below it."""
    stats = stat_fields() if fields is None else fields
    parents = {child: int(values[1]) for child, values in stats.items()}
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in tree:
                tree.add(child)
                frontier.append(child)
    return tree


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of `pid` and every process below it, living or reaped."""
    stats = stat_fields()
    # utime, stime, cutime, cstime (fields 14-17): children reaped count in their parent.
    return sum(
        sum(int(v) for v in stats[p][11:15]) / TICKS for p in process_tree(pid, stats) if p in stats
    )
