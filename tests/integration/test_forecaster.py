"""The forecaster on real Kafka + Postgres: recorded daily series in, forecasts equal to a
direct fit, one outcome per scheduled origin, and the same tables after crashes and replicas."""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from analytics.alerts.live import RulesInForce
from analytics.forecaster.clock import BarClock
from analytics.forecaster.handler import ForecastHandler
from analytics.forecaster.pool import FitPool
from analytics.forecaster.series import ForecastSeries
from analytics.forecaster.service import forecast_params
from analytics.forecaster.store import load_series, save_series
from analytics.packed_state import state_document
from ml.yahoo_recordings import read_chart
from producer.market.service import poll_once
from shared.errors import StateRestoreError
from shared.kafka import Topics
from shared.loop import Record
from shared.schemas import Bar, event_id
from shared.settings import (
    AlertRulesSettings,
    DataSource,
    ForecastSettings,
    KafkaSettings,
    MarketSettings,
    PostgresSettings,
    Settings,
    SourceSettings,
)
from tests.integration.alert_machines import machine
from tests.integration.bar_stream import drained, publish_bars, topic_bars
from tests.integration.processes import FAST_MEMBER, ServiceProcess, wait_for

FILES = {
    "AAPL": "chart_AAPL_1d_2020.json",
    "MSFT": "chart_MSFT_1d_2021-02-01_2022-01-28_dividends.json",
}
ORIGIN_COLUMNS = (
    "symbol, interval, origin_ts, outcome, message, arima_order, searched, window_bars, scale"
)
FORECAST_COLUMNS = (
    "symbol, interval, origin_ts, step, target_ts, model, median, mean, lo80, hi80, lo95, hi95,"
    " arima_order, aicc"
)
ERROR_COLUMNS = (
    "symbol, interval, origin_ts, step, model, bar_ts, actual, abs_error, scaled_error, inside80,"
    " inside95"
)


def recorded_bars(recordings: Path, symbol: str, closes: list[float] | None = None) -> list[Bar]:
    series = read_chart(recordings / "yahoo" / FILES.get(symbol, FILES["AAPL"]))
    values = closes if closes is not None else [float(c) for c in series.closes]
    bars = []
    for day, close in zip(series.days, values, strict=False):
        ts = datetime(day.year, day.month, day.day, tzinfo=UTC)
        bars.append(
            Bar(
                event_id=event_id("test", symbol, "1d", ts),
                source="test",
                symbol=symbol,
                interval="1d",
                ts=ts,
                open=close,
                high=close,
                low=close,
                close=close,
                adj_close=None,
                volume=1,
                fetched_at=datetime(2023, 1, 1, tzinfo=UTC),
            )
        )
    return bars


def explosive_closes(count: int) -> list[float]:
    """Log closes that grow like an AR(1) with φ = 1.02 (seeded): no ARIMA can be fitted."""
    rng = random.Random(7)  # noqa: S311 - reproducible test prices, not secrets
    log_closes = [1.0]
    for _ in range(count - 1):
        log_closes.append(1.02 * log_closes[-1] + 0.01 * rng.gauss(0.0, 1.0))
    return [math.exp(x) for x in log_closes]


def expected_tables(bars: list[Bar]) -> dict[str, set[tuple[Any, ...]]]:
    """What one uninterrupted forecaster writes for `bars`: the handler's pure `process`."""
    params = forecast_params(ForecastSettings())
    rules = RulesInForce(AlertRulesSettings().rules_path)
    pool = FitPool(params, workers=0)
    handler = ForecastHandler("reference", params, "XNYS", pool, 10**9, rules, 3600)
    states: dict[Any, Any] = {}
    tables: dict[str, set[tuple[Any, ...]]] = {
        "origins": set(),
        "forecasts": set(),
        "errors": set(),
    }
    by_symbol: dict[str, list[Bar]] = {}
    for bar in bars:
        by_symbol.setdefault(bar.symbol, []).append(bar)
    for symbol, series in by_symbol.items():
        records = [Record("t", hash(symbol) % 7, i, None, bar, 0) for i, bar in enumerate(series)]
        effects = handler.process(records, states)
        tables["origins"] |= {
            row[:3] + row[3:5] + row[5:7] + row[8:] for row in effects.rows.origins
        }
        tables["forecasts"] |= set(effects.rows.forecasts)
        tables["errors"] |= set(effects.rows.errors)
    return tables


def assert_same_rows(
    name: str, stored: set[tuple[Any, ...]], expected: set[tuple[Any, ...]], key_length: int
) -> None:
    """Equal sets, or a message naming the first rows that differ, side by side."""
    if stored == expected:
        return
    mine = {row[:key_length]: row for row in stored}
    theirs = {row[:key_length]: row for row in expected}
    keys = sorted(set(mine) ^ set(theirs) | {k for k in mine if mine[k] != theirs.get(k)})
    shown = "\n".join(f"{mine.get(k)}\n  expected {theirs.get(k)}" for k in keys[:3])
    raise AssertionError(f"{name}: {len(keys)} row(s) differ, e.g.\n{shown}")


def stored_tables(pg: PostgresSettings) -> dict[str, set[tuple[Any, ...]]]:
    with psycopg.connect(pg.conninfo()) as conn:
        return {
            "origins": set(conn.execute(f"SELECT {ORIGIN_COLUMNS} FROM forecast_origins")),  # noqa: S608
            "forecasts": set(conn.execute(f"SELECT {FORECAST_COLUMNS} FROM forecasts")),  # noqa: S608
            "errors": set(conn.execute(f"SELECT {ERROR_COLUMNS} FROM forecast_errors")),  # noqa: S608
        }


def forecaster(env: dict[str, str], tmp_path: Path, group: str, **extra: Any) -> ServiceProcess:
    return ServiceProcess(
        "analytics.forecaster",
        env,
        tmp_path,
        CONSUMER_GROUP_FORECASTER=group,
        FORECAST_WORKERS="2",
        **FAST_MEMBER,
        **extra,
    )


def no_pending_origin(pg: PostgresSettings, group: str) -> bool:
    """No series of the group has an origin whose fit still runs in the background."""
    with psycopg.connect(pg.conninfo()) as conn:
        rows = conn.execute(
            "SELECT packed_state, state FROM analytics_state WHERE consumer_group = %s", [group]
        ).fetchall()
    return not any(state_document(packed, legacy).get("pending") for packed, legacy in rows)


def wait_forecast(pg: PostgresSettings, kafka: KafkaSettings, group: str, topic: str) -> None:
    wait_for(
        lambda: drained(pg, kafka, group, topic) and no_pending_origin(pg, group),
        120,
        "the forecaster to drain and apply its pending origins",
    )


def test_replayed_daily_series_give_the_direct_fits_on_schedule(
    settings_factory: Callable[..., Settings],
    topics: Topics,
    recordings: Path,
    service_env: dict[str, str],
    group: str,
    tmp_path: Path,
) -> None:
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    for name in FILES.values():
        shutil.copy(recordings / "yahoo" / name, recorded / name)
    settings = settings_factory(
        source=SourceSettings(data_source=DataSource.REPLAY, replay_dir=recorded),
        market=MarketSettings(symbols=list(FILES), interval="1d", requests_per_minute=600),
    )
    report = poll_once(settings)  # the producer publishes the recorded bars
    assert not report.failed and report.published > 400
    service = forecaster(service_env, tmp_path, group).start()
    try:
        wait_forecast(settings.postgres, settings.kafka, group, topics.market_bars)
        stored = stored_tables(settings.postgres)
        assert service.healthz()[0] == 200
        assert_each_fit_timed(service.samples())
    finally:
        assert service.stop() == 0, service.log()
    # What the forecaster wrote equals a direct computation over the bars the producer published
    # (the pure process, whose ARIMA equals ml.forecast_origin on the same window: unit tests).
    published = topic_bars(settings.kafka, topics.market_bars)
    assert len(published) == report.published
    assert stored == expected_tables(published)
    clock = BarClock("XNYS", "1d")
    for symbol in FILES:
        series = sorted(b.ts for b in published if b.symbol == symbol)
        scheduled = [ts for i, ts in enumerate(series) if i >= 119 and clock.anchor(ts) % 5 == 0]
        origins = sorted(row[2] for row in stored["origins"] if row[0] == symbol)
        assert origins == scheduled, symbol  # one outcome per scheduled origin
    for row in stored["forecasts"]:
        assert row[4] is not None and clock.anchor(row[4]) is not None  # a session
        assert row[10] <= row[8] <= row[6] <= row[9] <= row[11]  # nested intervals
    assert {row[5] for row in stored["forecasts"]} == {"arima", "naive", "drift"}
    assert stored["errors"], "arrived steps are scored"
    assert_forecast_breaches(settings.postgres, published)


def assert_each_fit_timed(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> None:
    """Every fit the counter counts has its own duration observed, under the same labels."""
    counted = {
        labels: value
        for (name, labels), value in samples.items()
        if name == "pipeline_forecast_fits_total" and value
    }
    observed = {
        labels: value
        for (name, labels), value in samples.items()
        if name == "pipeline_forecast_fit_duration_seconds_count" and value
    }
    assert counted and observed == counted
    durations = sum(
        value
        for (name, _), value in samples.items()
        if name == "pipeline_forecast_fit_duration_seconds_sum"
    )
    assert durations > 0


def assert_forecast_breaches(pg: PostgresSettings, published: list[Bar]) -> None:
    """The forecast-breach rules fire and resolve where the stored forecasts say: bar t against
    step k of the newest fitted forecast whose origin is k bars before it (computed here from
    the rows, not by the rule engine)."""
    with psycopg.connect(pg.conninfo()) as conn:
        arima = conn.execute(
            "SELECT symbol, origin_ts, step, lo95, hi95 FROM forecasts WHERE model = 'arima'"
        ).fetchall()
        stored = conn.execute(
            "SELECT symbol, rule, bar_ts, state FROM alert_events"
            " WHERE rule LIKE 'forecast_breach%' ORDER BY id"
        ).fetchall()
    bounds = {(symbol, origin, step): (lo, hi) for symbol, origin, step, lo, hi in arima}
    checked = 0
    for symbol in FILES:
        series = sorted((b for b in published if b.symbol == symbol), key=lambda b: b.ts)
        stamps = [b.ts for b in series]
        upper: list[float | None] = []
        lower: list[float | None] = []
        for i, bar in enumerate(series):
            covering = next(
                (
                    bounds[(symbol, stamps[i - k], k)]
                    for k in range(1, 6)
                    if i - k >= 0 and (symbol, stamps[i - k], k) in bounds
                ),
                None,
            )
            upper.append(None if covering is None else bar.close - covering[1])
            lower.append(None if covering is None else bar.close - covering[0])
        for rule, values, fire, resolve in (
            ("forecast_breach_upper", upper, lambda v: v > 0, lambda v: v <= 0),
            ("forecast_breach_lower", lower, lambda v: v < 0, lambda v: v >= 0),
        ):
            expected = machine(stamps, values, fire, resolve)
            actual = [(ts, state) for s, r, ts, state in stored if (s, r) == (symbol, rule)]
            assert actual == expected, (symbol, rule)
            checked += len(expected)
    assert checked > 0, "a recorded year breaches its 95% intervals now and then"


def test_crashes_and_a_second_replica_leave_the_tables_of_an_uninterrupted_run(
    kafka_settings: KafkaSettings,
    pg_settings: PostgresSettings,
    topics: Topics,
    recordings: Path,
    service_env: dict[str, str],
    group: str,
    tmp_path: Path,
) -> None:
    bars = recorded_bars(recordings, "AAPL") + recorded_bars(recordings, "MSFT")
    # A constant series and an explosive one: their ARIMA fails with a message, nothing else.
    flat = [b.close for b in recorded_bars(recordings, "AAPL")]
    bars += recorded_bars(recordings, "FLAT", [100.0] * len(flat))
    bars += recorded_bars(recordings, "BOOM", explosive_closes(len(flat)))
    publish_bars(kafka_settings, topics.market_bars, bars)
    topic = topics.market_bars
    small = {"CONSUMER_BATCH_SIZE": "60", "FORECAST_MAX_ORIGINS_PER_BATCH": "7"}
    conflicts = 0.0
    for failpoint in ("after_copy", "after_commit"):
        crashing = forecaster(service_env, tmp_path, group, failpoint=failpoint, **small).start()
        assert crashing.wait_exit(120) == -9, crashing.log()
        conflicts += crashing.conflicts_before_kill()
    rng = random.Random(3)  # noqa: S311 - reproducible kill times
    for _ in range(3):  # and at random points
        killed = forecaster(service_env, tmp_path, group, **small).start()
        time.sleep(rng.uniform(0.5, 3.0))
        killed.process.kill()  # type: ignore[union-attr]
        killed.wait_exit(30)
    first = forecaster(service_env, tmp_path, group, **small).start()
    second = forecaster(service_env, tmp_path, group, **small).start()
    try:
        wait_for(
            lambda: first.metrics().get("pipeline_forecast_fits_total", 0) > 10,
            120,
            "some fits",
        )
        conflicts += second.metrics().get("pipeline_upsert_conflicts_total", 0)
        assert second.stop() == 0, second.log()  # a replica stops half-way
        wait_forecast(pg_settings, kafka_settings, group, topic)
        stored = stored_tables(pg_settings)
        conflicts += first.metrics().get("pipeline_upsert_conflicts_total", 0)
    finally:
        assert first.stop() == 0, first.log()
        second.stop()
    assert conflicts == 0  # no process found a row already there (those killed at random aside)
    expected = expected_tables(bars)
    for name, key_length in (("origins", 3), ("forecasts", 6), ("errors", 5)):
        assert_same_rows(name, stored[name], expected[name], key_length)
    failed = {row[0]: row[4] for row in stored["origins"] if row[3] == "failed"}
    assert set(failed) >= {"FLAT", "BOOM"} and all(failed.values())
    assert not any(row[3] == "failed" for row in stored["origins"] if row[0] == "AAPL")


def test_a_state_stored_as_json_before_loads_and_is_stored_packed_again(
    pg_settings: PostgresSettings, group: str
) -> None:
    """Forecaster states are MessagePack in packed_state; a row written as json before still
    loads, bit for bit, and the next save replaces it with the packed form."""
    series = ForecastSeries.new(10)
    for day in range(1, 13):
        series.feed(datetime(2024, 1, day, tzinfo=UTC), 100.0 + day / 3, 1.0)
    series.order, series.refits_left, series.pending = (1, 1, 0), 2, True
    key = ("AAPL", "1d")
    with psycopg.connect(pg_settings.conninfo()) as conn:
        save_series(conn, group, {key: (3, series)})
        assert stored_forms(conn, group) == (True, False)
        conn.execute(
            "UPDATE analytics_state SET packed_state = NULL, state = %s::json"
            " WHERE consumer_group = %s",
            [json.dumps(series.to_state()), group],
        )
        assert stored_forms(conn, group) == (False, True)
        partition, loaded = load_series(conn, group, [3])[key]
        assert partition == 3 and loaded.to_state() == series.to_state()
        assert loaded.last_ts == series.last_ts
        save_series(conn, group, {key: (3, loaded)})
        assert stored_forms(conn, group) == (True, False)
        assert load_series(conn, group, [3])[key][1].to_state() == series.to_state()


def test_a_state_continues_its_stored_window_and_refuses_to_load_without_it(
    pg_settings: PostgresSettings, group: str
) -> None:
    """The window is stored apart (forecaster_windows) when due, the state row holds the closes
    fed since; both load back bit for bit, and a state whose window row is gone is refused with
    the reason (StateRestoreError: the partition stays paused), never loaded short."""
    series = ForecastSeries.new(500)
    key = ("AAPL", "1m")
    with psycopg.connect(pg_settings.conninfo()) as conn:
        for saved_at in (10, 20):
            while series.bars < saved_at:
                series.feed(
                    datetime(2024, 1, 2, 15, series.bars, tzinfo=UTC), 100.0 + series.bars / 7, 1.0
                )
            save_series(conn, group, {key: (3, series)})
        assert window_bars(conn, group) == [10]  # stored once: 10 bars since are in the state
        loaded = load_series(conn, group, [3])[key][1]
        assert loaded == series and list(loaded.log_closes) == list(series.log_closes)
        conn.execute("DELETE FROM forecaster_windows WHERE consumer_group = %s", [group])
        with pytest.raises(StateRestoreError, match="stored at bar 10, found none"):
            load_series(conn, group, [3])


def window_bars(conn: psycopg.Connection, group: str) -> list[int]:
    rows = conn.execute(
        "SELECT bars FROM forecaster_windows WHERE consumer_group = %s", [group]
    ).fetchall()
    return [bars for (bars,) in rows]


def stored_forms(conn: psycopg.Connection, group: str) -> tuple[bool, bool]:
    """(packed_state is set, state is set) of the group's one row."""
    row = conn.execute(
        "SELECT packed_state IS NOT NULL, state IS NOT NULL FROM analytics_state"
        " WHERE consumer_group = %s",
        [group],
    ).fetchone()
    assert row is not None
    return row[0], row[1]
