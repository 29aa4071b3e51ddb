"""Test-wide setup: the test stack's addresses, and where the recorded API data lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# The team folder sits beside the checkout; tests (never the product) read recorded data there.
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# The test stack's own addresses (infra/test.env, the one place they live), unless the caller
# names other servers: `make test` never reuses a `make run` stack.
TEST_STACK_ENV = dict(
    line.split("=", 1)
    for line in (REPO_ROOT / "infra" / "test.env").read_text().splitlines()
    if line and not line.startswith("#")
)
for _name, _value in TEST_STACK_ENV.items():
    os.environ.setdefault(_name, _value)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(
            f"recorded data not found at {SHARED_DATA}: tests need ../shared beside the repo"
        )
    return SHARED_DATA
