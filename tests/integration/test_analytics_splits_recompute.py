"""Analytics across a split (state rescaled = recomputation on adjusted bars) and the recompute
command while the consumer runs (fenced by the state's revision)."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from analytics.consumer.service import configured_params
from analytics.recompute import recompute_series
from producer.market.service import poll_once
from shared.kafka import Topics
from shared.metrics import FENCED_BATCHES
from shared.schemas import Bar
from shared.settings import (
    AnalyticsSettings,
    DataSource,
    MarketSettings,
    Settings,
    SourceSettings,
)
from tests.conftest import REPO_ROOT
from tests.integration.analytics_run import (
    VALUE_COLUMNS,
    analytics_running,
    assert_rows_equal,
    stored_indicators,
    uninterrupted,
    wait_analyzed,
)
from tests.integration.bar_stream import publish_bars, random_walk_bars
from tests.integration.split_stream import (
    HISTORY_FILES,
    SPLIT_FILES,
    chart,
    derived_pre_split_bars,
    relabelled_split,
    split_of,
)
from tests.integration.storage_thread import fast_consumer, storage_running, wait_stored

# Columns in price units (the rest — RSI, volatility — are scale-free).
PRICE_COLUMNS = {c for c in VALUE_COLUMNS if c not in ("rsi", "volatility")}


def _recompute(settings: Settings, symbol: str, interval: str) -> tuple[int, int, int]:
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        return recompute_series(
            conn,
            settings.consumer.group_analytics,
            symbol,
            interval,
            configured_params(settings.analytics),
            settings.analytics.exchange,
            None,
        )


# The recorded 4:1 splits, and the same charts relabelled 3:1 and 3:2 (split_stream.py): a power
# of two rescales exactly, 3 and 1.5 do not (1/3 is not a binary fraction), which only these show.
SPLIT_RATIOS = [
    pytest.param(4, 1, id="4:1"),
    pytest.param(3, 1, id="3:1"),
    pytest.param(3, 2, id="3:2"),
]


@pytest.mark.parametrize(("numerator", "denominator"), SPLIT_RATIOS)
def test_split_rescales_the_state_like_a_recomputation_on_adjusted_bars(
    settings_factory: Callable[..., Settings],
    topics: Topics,
    recordings: Path,
    tmp_path: Path,
    numerator: int,
    denominator: int,
) -> None:
    yahoo = recordings / "yahoo"
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    files = {
        symbol: relabelled_split(yahoo, name, numerator, denominator, recorded).name
        for symbol, name in SPLIT_FILES.items()
    }
    settings = settings_factory(
        source=SourceSettings(data_source=DataSource.REPLAY, replay_dir=recorded),
        market=MarketSettings(symbols=list(SPLIT_FILES), interval="1d", requests_per_minute=600),
        consumer=fast_consumer(),
    )
    splits = {symbol: split_of(chart(recorded, name)) for symbol, name in files.items()}
    assert {ratio for _, ratio in splits.values()} == {numerator / denominator}
    derived: list[Bar] = []
    for symbol, (split_day, ratio) in splits.items():
        derived += derived_pre_split_bars(chart(yahoo, HISTORY_FILES[symbol]), split_day, ratio)

    with storage_running(settings), analytics_running(settings):
        # What a live observer saw: the pre-split stream (DERIVED, basis 1), then the producer
        # fetches the recorded files (basis 4, re-sending the pre-split days: duplicates).
        publish_bars(settings.kafka, topics.market_bars, derived)
        assert not poll_once(settings).failed
        wait_stored(settings, topics.market_bars, topics.market_actions)
        wait_analyzed(settings)
        live = stored_indicators(settings)
        for symbol in splits:
            _recompute(settings, symbol, "1d")
        recomputed = stored_indicators(settings)
        with psycopg.connect(settings.postgres.conninfo()) as conn:
            closes = dict(
                ((s, i, ts), close)
                for s, i, ts, close in conn.execute(
                    "SELECT symbol, interval, ts, close FROM price_bars_adjusted"
                ).fetchall()
            )
            bases = set(conn.execute("SELECT symbol, split_basis FROM price_bars").fetchall())
    # The split reached the stored bars on its ratio (so the live state was rescaled by it).
    assert bases == {(s, b) for s in splits for b in (1.0, numerator / denominator)}

    assert live.keys() == recomputed.keys()
    for symbol, (split_day, ratio) in splits.items():
        keys = sorted(k for k in live if k[0] == symbol)
        after = [k for k in keys if k[2] >= split_day]
        assert len(after) > 40 and len(keys) > len(after)
        for key in keys:
            for column, a, b in zip(VALUE_COLUMNS, live[key], recomputed[key], strict=True):
                if key[2] < split_day and column in PRICE_COLUMNS and a is not None:
                    a /= ratio  # rows written before the split are on the old basis
                if a is None or b is None:
                    assert a is None and b is None, f"{key} {column}: {a} vs {b}"
                else:
                    # Not bit for bit: the live state's sums are multiplied by 1/ratio once,
                    # the recomputation sums closes each multiplied by split_basis/newest_basis
                    # (and pre-split rows are divided by the ratio here). Exact for 4:1 (a power
                    # of two: the rows are equal); for 3:1 and 3:2 each product rounds, so about
                    # half the values differ, by ~1e-14 relative. The tolerance is the README's
                    # exactness bound for indicators.
                    tolerance = 1e-9 * max(abs(b), closes[key])
                    assert abs(a - b) <= tolerance, f"{key} {column}: live {a} vs recomputed {b}"
        # Not vacuous: without the rescale the 20-day SMA right after the split would mix bases.
        first = after[0]
        assert math.isclose(recomputed[first][0], live[first][0], rel_tol=1e-9)
        assert abs(recomputed[first][0] - closes[first]) < 0.2 * closes[first]


def test_recompute_while_the_consumer_runs_is_fenced_and_changes_nothing(
    settings_factory: Callable[..., Settings],
    topics: Topics,
    service_env: dict[str, str],
) -> None:
    settings = settings_factory(consumer=fast_consumer())
    symbols = ["AAPL", "MSFT", "NVDA", "SPY"]
    bars = random_walk_bars(symbols, 120, seed=7)
    half = len(bars) // 2
    fenced_before = FENCED_BATCHES._value.get()
    with storage_running(settings), analytics_running(settings):
        publish_bars(settings.kafka, topics.market_bars, bars[:half])
        wait_stored(settings, topics.market_bars)
        wait_analyzed(settings)
        read, written, revision = _recompute(settings, "NVDA", "1m")
        assert (read, written, revision) == (60, 60, 1)
        # The consumer's next batch for NVDA was computed on the state it loaded (revision 0):
        # its compare-and-set fails, the batch is rolled back and redone on the recomputed state.
        publish_bars(settings.kafka, topics.market_bars, bars[half:])
        wait_stored(settings, topics.market_bars)
        wait_analyzed(settings)
        assert_rows_equal(stored_indicators(settings), uninterrupted(settings, bars))
    assert FENCED_BATCHES._value.get() > fenced_before

    # The command line: a series the consumer never saw is an error with one clear line.
    result = subprocess.run(
        [sys.executable, "-m", "analytics.recompute", "--symbol", "NOPE", "--interval", "1m"],
        cwd=REPO_ROOT,
        env=service_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    group = settings.consumer.group_analytics
    assert f"NOPE/1m: the analytics consumer (group '{group}') has no state" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "analytics.recompute", "--all", "--wait-s", "5"],
        cwd=REPO_ROOT,
        env=service_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("indicators rows written") == len(symbols)
    assert_rows_equal(stored_indicators(settings), uninterrupted(settings, bars))


def test_a_period_change_keeps_restored_series_on_their_periods_until_recomputed(
    settings_factory: Callable[..., Settings], topics: Topics
) -> None:
    before = settings_factory(consumer=fast_consumer())
    after = settings_factory(consumer=fast_consumer(), analytics=AnalyticsSettings(sma_fast=10))
    old_bars = random_walk_bars(["AAPL"], 160, seed=11)
    new_bars = random_walk_bars(["MSFT"], 80, seed=12)

    def params_ids() -> dict[str, set[int]]:
        with psycopg.connect(before.postgres.conninfo()) as conn:
            rows = conn.execute("SELECT symbol, params_id FROM indicators").fetchall()
        ids: dict[str, set[int]] = {}
        for symbol, params_id in rows:
            ids.setdefault(symbol, set()).add(params_id)
        return ids

    with storage_running(before):
        with analytics_running(before):
            publish_bars(before.kafka, topics.market_bars, old_bars[:80])
            wait_analyzed(before)
        (old_id,) = params_ids()["AAPL"]
        with analytics_running(after):
            # AAPL's restored state keeps the periods it was computed with (and their id);
            # MSFT is new and starts on the configured ones.
            publish_bars(after.kafka, topics.market_bars, old_bars[80:120] + new_bars)
            wait_analyzed(after)
            ids = params_ids()
            assert ids["AAPL"] == {old_id} and len(ids["MSFT"]) == 1 and ids["MSFT"] != {old_id}
            wait_stored(after, topics.market_bars)
            _recompute(after, "AAPL", "1m")
            publish_bars(after.kafka, topics.market_bars, old_bars[120:])
            wait_analyzed(after)
    assert params_ids() == {"AAPL": ids["MSFT"], "MSFT": ids["MSFT"]}
    assert_rows_equal(stored_indicators(after), uninterrupted(after, old_bars + new_bars))
