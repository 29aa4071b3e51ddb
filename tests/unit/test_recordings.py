"""recordings/: each file has its provenance (source, commit, license) and is the file described."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

PROVENANCE = "PROVENANCE.md"


@dataclass(frozen=True)
class Entry:
    """One row of recordings/PROVENANCE.md."""

    file: str
    source_repo: str
    commit: str
    license: str
    size: int
    sha256_16: str
    what: str


def entries(recordings: Path) -> dict[str, Entry]:
    rows: dict[str, Entry] = {}
    for line in (recordings / PROVENANCE).read_text().splitlines():
        if not line.startswith("| `"):
            continue
        file, repo, _path, commit, license_, size, digest, what = (
            cell.strip() for cell in line.strip().strip("|").split("|")
        )
        rows[file.strip("`")] = Entry(
            file.strip("`"), repo, commit.strip("`"), license_, int(size), digest.strip("`"), what
        )
    return rows


def test_every_recorded_file_is_listed_and_every_listed_file_exists(recordings: Path) -> None:
    on_disk = {
        path.relative_to(recordings).as_posix()
        for path in recordings.rglob("*")
        if path.is_file() and path.name != PROVENANCE
    }
    assert on_disk
    assert on_disk == set(entries(recordings))


def test_each_entry_says_where_it_comes_from(recordings: Path) -> None:
    for entry in entries(recordings).values():
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", entry.source_repo), entry
        assert re.fullmatch(r"[0-9a-f]{40}", entry.commit), entry
        assert entry.license and entry.what, entry


def test_each_file_is_the_one_described(recordings: Path) -> None:
    for name, entry in entries(recordings).items():
        body = (recordings / name).read_bytes()
        assert (len(body), hashlib.sha256(body).hexdigest()[:16]) == (
            entry.size,
            entry.sha256_16,
        ), name


def test_provenance_points_at_nothing_outside_the_repository(recordings: Path) -> None:
    # A clone has nothing beside the repository: no path may climb out of it.
    assert "../" not in (recordings / PROVENANCE).read_text()
