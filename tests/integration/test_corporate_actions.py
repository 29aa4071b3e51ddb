"""Splits and dividends from recorded charts: raw bases kept, adjusted view continuous."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from producer.market.service import poll_once
from shared.kafka import Topics
from shared.schemas import Bar
from shared.settings import DataSource, MarketSettings, Settings, SourceSettings
from tests.integration.bar_stream import publish_bars
from tests.integration.split_stream import (
    DIVIDEND_FILE,
    HISTORY_FILES,
    SPLIT_FILES,
    chart,
    derived_pre_split_bars,
    recorded_closes,
    split_of,
)
from tests.integration.storage_thread import fast_consumer, storage_running, wait_stored

# After AAPL's 2020 split, without any split event in its window.
LATER_AAPL_FILE = "chart_AAPL_1d_6mo_2025-04-30_2025-10-29.json"


def expected_actions(yahoo: Path) -> set[tuple[Any, ...]]:
    rows = set()
    for name in [*SPLIT_FILES.values(), DIVIDEND_FILE]:
        result = chart(yahoo, name)
        symbol = result["meta"]["symbol"]
        for split in result["events"].get("splits", {}).values():
            ts = datetime.fromtimestamp(split["date"], UTC)
            rows.add((symbol, ts, "split", split["numerator"] / split["denominator"], None))
        for dividend in result["events"].get("dividends", {}).values():
            ts = datetime.fromtimestamp(dividend["date"], UTC)
            rows.add((symbol, ts, "dividend", None, dividend["amount"]))
    return rows


def test_split_keeps_raw_bases_adjusted_view_is_continuous_and_refetch_adds_no_revisions(
    settings_factory: Callable[..., Settings], topics: Topics, recordings: Path, tmp_path: Path
) -> None:
    yahoo = recordings / "yahoo"
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    for name in [*SPLIT_FILES.values(), DIVIDEND_FILE]:
        shutil.copy(yahoo / name, recorded / name)
    settings = settings_factory(
        source=SourceSettings(data_source=DataSource.REPLAY, replay_dir=recorded),
        market=MarketSettings(
            symbols=["AAPL", "NVDA", "MSFT"], interval="1d", requests_per_minute=600
        ),
        consumer=fast_consumer(),
    )
    derived: list[Bar] = []
    splits: dict[str, tuple[datetime, float]] = {}
    for symbol, name in SPLIT_FILES.items():
        splits[symbol] = split_of(chart(yahoo, name))
        derived += derived_pre_split_bars(chart(yahoo, HISTORY_FILES[symbol]), *splits[symbol])

    with storage_running(settings):
        # Before the split: the derived stream; then the producer fetches the recorded files.
        publish_bars(settings.kafka, topics.market_bars, derived)
        report = poll_once(settings)
        assert not report.failed and report.actions == len(expected_actions(yahoo))
        wait_stored(settings, topics.market_bars, topics.market_actions)
        with psycopg.connect(settings.postgres.conninfo()) as conn:
            actions = set(
                conn.execute(
                    "SELECT symbol, ts, kind, ratio, amount FROM corporate_actions"
                ).fetchall()
            )
            raw = {
                (s, ts): (close, basis)
                for s, ts, close, basis in conn.execute(
                    "SELECT symbol, ts, close, split_basis FROM price_bars"
                ).fetchall()
            }
            adjusted = {
                (s, ts): (close, basis)
                for s, ts, close, basis in conn.execute(
                    "SELECT symbol, ts, close, split_basis FROM price_bars_adjusted"
                ).fetchall()
            }
            revisions = conn.execute("SELECT count(*) FROM bar_revisions").fetchone()
        assert actions == expected_actions(yahoo)
        assert revisions == (0,)

        for symbol in SPLIT_FILES:
            split_day, ratio = splits[symbol]
            history = recorded_closes(chart(yahoo, HISTORY_FILES[symbol]))
            truth = {ts: close for ts, close in history.items() if ts < split_day}
            truth.update(recorded_closes(chart(yahoo, SPLIT_FILES[symbol])))
            for ts, close in truth.items():
                stored_close, basis = raw[(symbol, ts)]
                if ts < split_day:  # the raw row keeps the basis it was first seen in
                    assert basis == 1.0 and stored_close == close * ratio
                else:
                    assert basis == ratio and stored_close == close
                adjusted_close, adjusted_basis = adjusted[(symbol, ts)]
                assert adjusted_basis == ratio
                assert abs(adjusted_close - close) <= 1e-9 * close
            # Continuous across the split: no 4x jump from the last pre-split day.
            days = sorted(ts for ts in truth if ts <= split_day)[-2:]
            before, after = (adjusted[(symbol, d)][0] for d in days)
            assert 0.8 < after / before < 1.25
        # MSFT: dividends only, nothing rescaled.
        msft = {k: v for k, v in adjusted.items() if k[0] == "MSFT"}
        assert msft and all(v[1] == 1.0 for v in msft.values())
        assert all(msft[k][0] == raw[k][0] for k in msft)

        # Re-fetching the same history after the split (fresh producer state): no revisions.
        with psycopg.connect(settings.postgres.conninfo()) as conn:
            conn.execute("DELETE FROM producer_state")
        again = poll_once(settings)
        assert again.published > 0 and not again.failed
        wait_stored(settings, topics.market_bars, topics.market_actions)
        with psycopg.connect(settings.postgres.conninfo()) as conn:
            assert conn.execute("SELECT count(*) FROM bar_revisions").fetchone() == (0,)
            assert conn.execute("SELECT count(*) FROM price_bars").fetchone() == (len(raw),)
            count = conn.execute("SELECT count(*) FROM corporate_actions").fetchone()
            assert count == (len(actions),)

        # A later window without the split event (AAPL, 2025): the producer knows the split it
        # delivered (its own producer_actions, never storage's corporate_actions), so these bars
        # keep basis 4 and the adjusted view passes them through.
        shutil.copy(yahoo / LATER_AAPL_FILE, recorded / LATER_AAPL_FILE)
        later = poll_once(settings)
        assert later.published > 100 and not later.failed
        wait_stored(settings, topics.market_bars)
        with psycopg.connect(settings.postgres.conninfo()) as conn:
            rows = conn.execute(
                "SELECT p.split_basis, p.close, a.close FROM price_bars p"
                " JOIN price_bars_adjusted a USING (symbol, interval, ts)"
                " WHERE p.symbol = 'AAPL' AND p.ts >= '2025-01-01'"
            ).fetchall()
        assert len(rows) == later.published
        assert all(basis == splits["AAPL"][1] and raw == adjusted for basis, raw, adjusted in rows)
