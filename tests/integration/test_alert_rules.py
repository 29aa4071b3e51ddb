"""Alert rules on recorded real series: each default rule fires and resolves where an
independent computation over the stored closes, volumes and TA-Lib indicators says; a replay
adds nothing; SIGHUP swaps valid rules only."""

from __future__ import annotations

import shutil
import signal
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import psycopg

from producer.market.service import poll_once
from shared.kafka import Topics
from shared.settings import ConsumerSettings, DataSource, MarketSettings, Settings, SourceSettings
from tests.integration.alert_machines import Events, Value, machine
from tests.integration.analytics_run import (
    VALUE_COLUMNS,
    analytics_running,
    stored_indicators,
    wait_analyzed,
)
from tests.integration.bar_stream import publish_bars, random_walk_bars, topic_bars
from tests.integration.processes import ServiceProcess, wait_for

FILES = ["chart_AAPL_1d_2020.json", "chart_AMZN_1d_2020.json", "chart_QQQ_1d_2020.json"]


def expected_events(
    stamps: list[datetime], closes: list[float], volumes: list[float], indicators: dict
) -> dict[str, Events]:
    """Each default rule's transitions from the bars and the stored indicator values."""

    def column(name: str) -> list[Value]:
        return [indicators[ts][name] for ts in stamps]

    def minus(a: list[Value], b: list[Value]) -> list[Value]:
        return [None if x is None or y is None else x - y for x, y in zip(a, b, strict=True)]

    rsi, volatility = column("rsi"), column("volatility")
    over = minus(closes, column("bb_upper"))
    under = minus(closes, column("bb_lower"))
    gap = minus(column("macd"), column("macd_signal"))
    pct: list[Value] = [None] * 5 + [
        (closes[i] / closes[i - 5] - 1) * 100 for i in range(5, len(closes))
    ]
    spike: list[Value] = [None] * 20 + [
        volumes[i] / (sum(volumes[i - 20 : i]) / 20) for i in range(20, len(volumes))
    ]
    return {
        "rsi_overbought": machine(stamps, rsi, lambda v: v > 70, lambda v: v < 65),
        "rsi_oversold": machine(stamps, rsi, lambda v: v < 30, lambda v: v > 35),
        "bollinger_upper_breakout": machine(stamps, over, lambda v: v > 0, lambda v: v <= 0),
        "bollinger_lower_breakout": machine(stamps, under, lambda v: v < 0, lambda v: v >= 0),
        "macd_above_signal": machine(stamps, gap, lambda v: v > 0, lambda v: v <= 0),
        "macd_below_signal": machine(stamps, gap, lambda v: v < 0, lambda v: v >= 0),
        "pct_change_up": machine(stamps, pct, lambda v: v > 5, lambda v: v < 2.5, 5),
        "pct_change_down": machine(stamps, pct, lambda v: v < -5, lambda v: v > -2.5, 5),
        "volume_spike": machine(stamps, spike, lambda v: v > 3, lambda v: v < 2, 5),
        "volatility_high": machine(stamps, volatility, lambda v: v > 0.5, lambda v: v < 0.4),
    }


def stored_events(settings: Settings) -> dict[tuple[str, str], Events]:
    events: dict[tuple[str, str], Events] = {}
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        for symbol, rule, bar_ts, state in conn.execute(
            "SELECT symbol, rule, bar_ts, state FROM alert_events ORDER BY id"
        ):
            events.setdefault((symbol, rule), []).append((bar_ts, state))
    return events


def test_default_rules_fire_and_resolve_where_the_data_says_and_a_replay_adds_nothing(
    settings_factory: Callable[..., Settings], topics: Topics, recordings: Path, tmp_path: Path
) -> None:
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    for name in FILES:
        shutil.copy(recordings / "yahoo" / name, recorded / name)
    settings = settings_factory(
        source=SourceSettings(data_source=DataSource.REPLAY, replay_dir=recorded),
        market=MarketSettings(symbols=["AAPL", "AMZN", "QQQ"], interval="1d"),
        consumer=ConsumerSettings(poll_timeout_s=0.2),
    )
    assert not poll_once(settings).failed
    with analytics_running(settings):
        wait_analyzed(settings)
    stored = stored_events(settings)
    published = topic_bars(settings.kafka, topics.market_bars)
    indicators: dict[tuple[str, datetime], dict[str, Value]] = {}
    for (symbol, _interval, ts), values in stored_indicators(settings).items():
        indicators[(symbol, ts)] = dict(zip(VALUE_COLUMNS, values, strict=True))
    checked = 0
    for symbol in ("AAPL", "AMZN", "QQQ"):
        series = sorted((b for b in published if b.symbol == symbol), key=lambda b: b.ts)
        stamps = [b.ts for b in series]
        closes = [b.close for b in series]
        volumes = [float(b.volume) for b in series]
        values = {ts: indicators[(symbol, ts)] for ts in stamps}
        for rule, events in expected_events(stamps, closes, volumes, values).items():
            assert stored.get((symbol, rule), []) == events, (symbol, rule)
            checked += len(events)
    assert checked > 50, "the recorded year fires and resolves the default rules many times"

    # The whole topic again, in a fresh analytics group: every event is already there.
    before = sum(len(v) for v in stored.values())
    replay = settings_factory(
        consumer=ConsumerSettings(poll_timeout_s=0.2, group_analytics=f"a{uuid.uuid4().hex}")
    )
    with analytics_running(replay):
        wait_analyzed(replay)
    assert sum(len(v) for v in stored_events(settings).values()) == before
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        (forks,) = conn.execute(
            "SELECT count(*) FROM alert_events a JOIN alert_events b"
            " ON a.prev_event_id = b.id WHERE a.fingerprint <> b.fingerprint"
        ).fetchone()
    assert forks == 0


def indicator_rows(settings: Settings) -> int:
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        (count,) = conn.execute("SELECT count(*) FROM indicators").fetchone()  # type: ignore[misc]
    return count


def test_sighup_swaps_only_a_valid_rules_file(
    settings_factory: Callable[..., Settings],
    topics: Topics,
    service_env: dict[str, str],
    group: str,
    tmp_path: Path,
) -> None:
    rules = tmp_path / "alerts.toml"
    default = Path(__file__).resolve().parents[2] / "rules" / "alerts.toml"
    rules.write_text(default.read_text())
    settings = settings_factory()
    service = ServiceProcess(
        "analytics.consumer",
        service_env,
        tmp_path,
        ALERT_RULES_PATH=str(rules),
        CONSUMER_GROUP_ANALYTICS=group,
        CONSUMER_POLL_TIMEOUT_S="0.2",
    ).start()
    bars = random_walk_bars(["AAPL"], 30, seed=1)
    try:
        publish_bars(settings.kafka, topics.market_bars, bars[:10])
        # Signalled once the service is in its loop (its first bars stored): a SIGHUP before
        # it has read its rules file has nothing to reload.
        wait_for(lambda: indicator_rows(settings) == 10, 60, "the first bars' indicators")
        rules.write_text(default.read_text().replace('op = ">"', 'op = "=>"', 1))
        service.process.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        publish_bars(settings.kafka, topics.market_bars, bars[10:20])
        wait_for(lambda: "not loaded, keeping version" in service.log(), 30, "the refusal")
        refusal = [line for line in service.log().splitlines() if "not loaded" in line]
        assert len(refusal) == 1 and "rsi_overbought" in refusal[0]
        rules.write_text(default.read_text().replace("version = 1", "version = 2"))
        service.process.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        publish_bars(settings.kafka, topics.market_bars, bars[20:])
        wait_for(lambda: "replace" in service.log(), 30, "the swap")
        assert service.running and service.healthz()[0] == 200
    finally:
        assert service.stop() == 0, service.log()


def _level_rule(rule_id: str, threshold: float) -> str:
    return f"""
[[rules]]
id = "{rule_id}"
kind = "level"
severity = "info"
symbols = ["*"]
intervals = ["*"]
indicator = "close"
op = ">"
threshold = {threshold}
resolve_op = "<"
resolve = -1.0
"""


def test_sighup_resolves_machines_of_removed_and_changed_rules_without_a_new_bar(
    settings_factory: Callable[..., Settings],
    topics: Topics,
    service_env: dict[str, str],
    group: str,
    tmp_path: Path,
) -> None:
    """Two rules fire on two series; a reload removes one and changes the other: all four
    machines resolve right after the swap, stamped with their series' newest bar, with no bar
    arriving — active_alerts keeps no orphan — and a restart adds nothing."""
    rules = tmp_path / "alerts.toml"
    rules.write_text("version = 1\n" + _level_rule("gone", 0.0) + _level_rule("edited", 0.0))
    settings = settings_factory()
    env = {
        "ALERT_RULES_PATH": str(rules),
        "CONSUMER_GROUP_ANALYTICS": group,
        "CONSUMER_POLL_TIMEOUT_S": "0.2",
    }
    bars = random_walk_bars(["AAPL", "MSFT"], 7, seed=3)
    first, later = bars[:12], bars[12]  # six minutes of both; then AAPL's seventh
    newest = {
        symbol: max(bar.ts for bar in first if bar.symbol == symbol) for symbol in ("AAPL", "MSFT")
    }

    def events() -> list[tuple[str, str, str, datetime, str]]:
        with psycopg.connect(settings.postgres.conninfo()) as conn:
            return conn.execute(
                "SELECT rule, symbol, state, bar_ts, message FROM alert_events ORDER BY id"
            ).fetchall()

    service = ServiceProcess("analytics.consumer", service_env, tmp_path, **env).start()
    try:
        publish_bars(settings.kafka, topics.market_bars, first)
        wait_for(lambda: len(events()) == 4, 60, "four firing events")
        assert {(rule, symbol, state) for rule, symbol, state, _, _ in events()} == {
            (rule, symbol, "firing") for rule in ("gone", "edited") for symbol in newest
        }
        rules.write_text("version = 2\n" + _level_rule("edited", 1.0))
        service.process.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        wait_for(lambda: len(events()) == 8, 30, "four resolves without a new bar")
        resolved = [row for row in events() if row[2] == "resolved"]
        assert sorted((rule, symbol) for rule, symbol, *_ in resolved) == sorted(
            (rule, symbol) for rule in ("gone", "edited") for symbol in newest
        )
        for rule, symbol, _, bar_ts, message in resolved:
            assert bar_ts == newest[symbol]
            why = "rule removed" if rule == "gone" else "rule changed"
            assert why in message, message
        with psycopg.connect(settings.postgres.conninfo()) as conn:
            assert conn.execute("SELECT count(*) FROM active_alerts").fetchone() == (0,)
    finally:
        assert service.stop() == 0, service.log()
    # The reconciled machines were saved: after a restart, the next bar fires only the edited
    # rule, as a new machine; nothing of `gone` comes back.
    again = ServiceProcess("analytics.consumer", service_env, tmp_path, **env).start()
    try:
        publish_bars(settings.kafka, topics.market_bars, [later])
        wait_for(lambda: len(events()) == 9, 30, "the edited rule firing again")
        assert events()[-1][:4] == ("edited", "AAPL", "firing", later.ts)
    finally:
        assert again.stop() == 0, again.log()
