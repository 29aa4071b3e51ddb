"""Recorded Yahoo charts served through yfinance's real request path (replayed, no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from producer.data_source import replay_session
from producer.replay.index import ReplayIndex
from producer.yahoo_client import YahooClient


@pytest.fixture(scope="module")
def yahoo_dir(recordings: Path) -> Path:
    return recordings / "yahoo"


@pytest.fixture(scope="module")
def client(yahoo_dir: Path) -> YahooClient:
    """A chart client answering from every recorded Yahoo response."""
    return YahooClient(
        replay_session(ReplayIndex.scan(yahoo_dir)), "America/New_York", timeout_s=5, prepost=False
    )
