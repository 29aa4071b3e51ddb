"""A recompute after a backfill moves the alert machines to where a run over the whole history
leaves them: the difference is inserted as historical events, the live chain stays one line."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from analytics.alerts.engine import AlertState, BarFacts, evaluate
from analytics.alerts.rules import load_rules
from analytics.consumer.service import configured_params
from analytics.indicators import IndicatorValues
from analytics.recompute import recompute_series
from analytics.store import stored_alerts
from shared.kafka import Topics
from shared.schemas import Bar
from shared.settings import AlertRulesSettings, Settings
from tests.integration.analytics_run import analytics_running, wait_analyzed
from tests.integration.bar_stream import minute_bar, publish_bars
from tests.integration.storage_thread import fast_consumer, storage_running, wait_stored

START = datetime(2024, 10, 2, 13, 30, tzinfo=UTC)
# Fires above 150, resolves below 100 (a close of 120 changes nothing); 5 bars of cooldown.
RULES = """version = 1
[[rules]]
id = "close_high"
kind = "level"
severity = "warning"
symbols = ["*"]
intervals = ["*"]
indicator = "close"
op = ">"
threshold = 150.0
resolve_op = "<"
resolve = 100.0
cooldown_bars = 5
"""
# AAPL: the whole history fires at bar 0 and stays firing; live from bar 1 it never fires.
# MSFT: the whole history fires at 0, resolves at 1, and bar 3 falls in the cooldown (quiet);
# live from bar 2 it fires at bar 3 and stays firing.
CLOSES = {"AAPL": [200.0] + [120.0] * 9, "MSFT": [200.0, 90.0, 120.0, 200.0] + [120.0] * 6}
LIVE_FROM = {"AAPL": 1, "MSFT": 2}


def bars_of(symbol: str) -> list[Bar]:
    return [
        minute_bar(symbol, START + timedelta(minutes=i), (c, c, c, c), 1000)
        for i, c in enumerate(CLOSES[symbol])
    ]


def whole_history_firing(rules_path: Path) -> dict[str, bool]:
    """Each series' machine after one pass over all its bars (the engine, directly)."""
    rules = load_rules(rules_path)
    firing = {}
    for symbol in CLOSES:
        state = AlertState()
        for bar in bars_of(symbol):
            facts = BarFacts(symbol, "1m", bar.ts, bar.close, bar.volume, 1.0, NO_VALUES)
            evaluate(rules, state, facts)
        firing[symbol] = state.machines["close_high"].firing
    return firing


NO_VALUES = dict.fromkeys(IndicatorValues._fields)


def test_recompute_after_a_backfill_moves_the_machines_to_the_whole_history_state(
    settings_factory: Callable[..., Settings], topics: Topics, tmp_path: Path
) -> None:
    rules_path = tmp_path / "alerts.toml"
    rules_path.write_text(RULES)
    settings = settings_factory(
        consumer=fast_consumer(), alert_rules=AlertRulesSettings(rules_path=rules_path)
    )
    assert whole_history_firing(rules_path) == {"AAPL": True, "MSFT": False}

    def events() -> list[tuple[str, str, datetime, bool, str]]:
        with psycopg.connect(settings.postgres.conninfo()) as conn:
            return conn.execute(
                "SELECT symbol, state, bar_ts, historical, message FROM alert_events ORDER BY id"
            ).fetchall()

    live = [bar for s in CLOSES for bar in bars_of(s)[LIVE_FROM[s] :]]
    backfill = [bar for s in CLOSES for bar in bars_of(s)[: LIVE_FROM[s]]]
    newest = START + timedelta(minutes=9)
    with storage_running(settings), analytics_running(settings):
        publish_bars(settings.kafka, topics.market_bars, sorted(live, key=lambda b: b.ts))
        wait_analyzed(settings)
        assert [(s, state, ts) for s, state, ts, _, _ in events()] == [
            ("MSFT", "firing", START + timedelta(minutes=3))
        ]
        publish_bars(settings.kafka, topics.market_bars, backfill)  # late for the live state
        wait_stored(settings, topics.market_bars)
        wait_analyzed(settings)
        with psycopg.connect(settings.postgres.conninfo()) as conn:
            for symbol in CLOSES:
                recompute_series(
                    conn,
                    settings.consumer.group_analytics,
                    symbol,
                    "1m",
                    configured_params(settings.analytics),
                    settings.analytics.exchange,
                    None,
                    load_rules(rules_path),
                )
        after = events()
        # One more bar each, in the band: the recomputed machines hold, nothing new.
        more = [minute_bar(s, newest + timedelta(minutes=1), (120.0,) * 4, 1000) for s in CLOSES]
        publish_bars(settings.kafka, topics.market_bars, more)
        wait_analyzed(settings)

    # (The live event is historical too: these 2024 bars are old when consumed.)
    assert [(s, state, ts, historical) for s, state, ts, historical, _ in after] == [
        ("MSFT", "firing", START + timedelta(minutes=3), True),
        ("AAPL", "firing", newest, True),
        ("MSFT", "resolved", newest, True),
    ]
    assert f"firing since {START.isoformat()}" in after[1][4]
    assert "resolved by a recompute" in after[2][4]
    assert events() == after
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        active = conn.execute("SELECT symbol FROM active_alerts").fetchall()
        machines = {
            s: stored_alerts(conn, settings.consumer.group_analytics, s, "1m").machines
            for s in CLOSES
        }
    assert active == [("AAPL",)]
    assert {s: m["close_high"].firing for s, m in machines.items()} == whole_history_firing(
        rules_path
    )
