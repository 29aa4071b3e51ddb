"""The README's cookbook blocks are the files in docs/cookbook/, word for word, every one shown."""

from __future__ import annotations

import re

from shared.settings import project_root

ROOT = project_root()
BLOCK = re.compile(r"<!-- cookbook: ([a-z_]+\.sql) -->\n```sql\n(.*?)```", re.DOTALL)


def test_readme_shows_every_cookbook_file_as_it_is() -> None:
    shown = dict(BLOCK.findall((ROOT / "README.md").read_text()))
    files = {path.name: path.read_text() for path in (ROOT / "docs" / "cookbook").glob("*.sql")}
    assert len(files) >= 8
    assert shown == files
