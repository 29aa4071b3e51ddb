"""A known dataset for the read side (cookbook recipes, charts, export), from recorded responses.

Bars, splits, news and the GDP vintage come from recordings/ (Yahoo, Finnhub, FRED), written the
way the storage consumer writes them; the rows no recording holds (indicators are computed here
with the analytics code, forecasts, alerts, an earlier GDP vintage) are DERIVED and say so. The
tests compute their expected rows from `KnownData`, never by running the recipe's SQL again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from analytics import store as analytics_store
from analytics.consumer.service import configured_params
from analytics.indicators import annualization_factor
from analytics.series import SeriesState
from producer.news.parsing import sentiment
from shared.settings import AnalyticsSettings
from tests.integration.split_stream import chart, session_key, split_of

AAPL_FILE = "chart_AAPL_1d_2020.json"
MSFT_FILE = "chart_MSFT_1d_6mo_2025-04-30_2025-10-29.json"
NEWS_FILE = "company_news_AAPL_2026-05-16_2026-05-23.json"
GDP_FILE = "series_observations_GDP_rt2024-12-19.json"
# DERIVED: the first estimates of the newest quarters, published before the recorded vintage.
GDP_FIRST_ESTIMATES = {date(2024, 7, 1): (date(2024, 10, 30), 29349.924)}

INSERT_BAR = """
INSERT INTO price_bars (symbol, interval, ts, open, high, low, close, adj_close, volume,
                        split_basis, source, event_id)
VALUES (%s, '1d', %s, %s, %s, %s, %s, %s, %s, %s, 'replay', %s)
"""
INSERT_ACTION = """
INSERT INTO corporate_actions (symbol, ts, kind, ratio, amount, source)
VALUES (%s, %s, %s, %s, %s, 'replay')
"""
INSERT_INDICATORS = """
INSERT INTO indicators (symbol, interval, ts, sma_fast, sma_slow, ema_fast, ema_slow, rsi, macd,
                        macd_signal, macd_hist, bb_lower, bb_middle, bb_upper, volatility,
                        params_id, split_basis)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""
INSERT_ARTICLE = """
INSERT INTO news_articles (id, published_at, headline, summary, source, url, category, sentiment)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING
"""
INSERT_LINK = "INSERT INTO article_symbols (article_id, symbol) VALUES (%s, %s)"
INSERT_SERIES = (
    "INSERT INTO macro_series (series_id, title, units, frequency) VALUES (%s, %s, %s, %s)"
)
INSERT_OBSERVATION = """
INSERT INTO macro_observations (series_id, obs_date, realtime_start, value) VALUES (%s, %s, %s, %s)
"""
INSERT_ORIGIN = """
INSERT INTO forecast_origins (symbol, interval, origin_ts, outcome, arima_order, searched,
                              window_bars, scale)
VALUES (%s, '1d', %s, 'fitted', '(0,1,0)', true, %s, %s)
"""
INSERT_FORECAST = """
INSERT INTO forecasts (symbol, interval, origin_ts, step, target_ts, model, median, mean, lo80,
                       hi80, lo95, hi95)
VALUES (%s, '1d', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""
INSERT_ERROR = """
INSERT INTO forecast_errors (symbol, interval, origin_ts, step, model, bar_ts, actual, abs_error,
                             scaled_error, inside80, inside95)
VALUES (%s, '1d', %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""
INSERT_ALERT = """
INSERT INTO alert_events (fingerprint, rule, rules_version, severity, symbol, interval, state,
                          value, threshold, message, bar_ts, prev_event_id, historical)
VALUES (%s, %s, 'v1', %s, %s, '1d', %s, %s, %s, %s, %s, %s, false)
RETURNING id
"""


@dataclass(frozen=True)
class StoredBar:
    symbol: str
    ts: datetime
    close: float
    volume: int
    split_basis: float
    recorded_close: float  # the recording's close: split-adjusted as of the recording


@dataclass
class KnownData:
    """What was written, for tests to compute their expected rows from."""

    bars: dict[str, list[StoredBar]] = field(default_factory=dict)
    split: tuple[datetime, float] | None = None
    indicators: dict[datetime, tuple[float | None, ...]] = field(default_factory=dict)
    news: list[tuple[str, datetime, str, float]] = field(default_factory=list)
    gdp: dict[date, list[tuple[date, float | None]]] = field(default_factory=dict)
    forecasts: list[tuple[Any, ...]] = field(default_factory=list)
    errors: list[tuple[Any, ...]] = field(default_factory=list)
    newest_origin: datetime | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)


def load_known_data(conninfo: str, recordings: Path) -> KnownData:
    """Write the known dataset into the (migrated, empty) database at `conninfo`."""
    known = KnownData()
    with psycopg.connect(conninfo) as conn:
        _bars(conn, recordings / "yahoo", known)
        _indicators(conn, known)
        _news(conn, recordings / "finnhub" / NEWS_FILE, known)
        _gdp(conn, recordings / "fred" / GDP_FILE, known)
        _forecasts(conn, known)
        _alerts(conn, known)
    return known


def _bars(conn: psycopg.Connection, yahoo: Path, known: KnownData) -> None:
    """AAPL 2020 as a live observer stored it (before the 4:1 split on basis 1, prices times 4:
    DERIVED from the recording, which is adjusted as of its fetch; from the split on, basis 4) and
    MSFT's six months as recorded."""
    aapl = chart(yahoo, AAPL_FILE)
    split_day, ratio = split_of(aapl)
    known.split = (split_day, ratio)
    conn.execute(INSERT_ACTION, ("AAPL", split_day, "split", ratio, None))
    for symbol, result in (("AAPL", aapl), ("MSFT", chart(yahoo, MSFT_FILE))):
        quote = result["indicators"]["quote"][0]
        adjclose = result["indicators"]["adjclose"][0]["adjclose"]
        rows = []
        for i, stamp in enumerate(result["timestamp"]):
            ts = session_key(stamp)
            before = symbol == "AAPL" and ts < split_day
            factor, basis = (ratio, 1.0) if before else (1.0, ratio if symbol == "AAPL" else 1.0)
            close = quote["close"][i] * factor
            volume = round(quote["volume"][i] / factor)
            rows.append(
                (
                    symbol, ts, quote["open"][i] * factor, quote["high"][i] * factor,
                    quote["low"][i] * factor, close, adjclose[i] * factor, volume, basis,
                    f"{symbol}-1d-{ts.isoformat()}",
                )
            )  # fmt: skip
            known.bars.setdefault(symbol, []).append(
                StoredBar(symbol, ts, close, volume, basis, quote["close"][i])
            )
        with conn.cursor() as cur:
            cur.executemany(INSERT_BAR, rows)


def _indicators(conn: psycopg.Connection, known: KnownData) -> None:
    """AAPL's indicators as the analytics consumer computes them (its own code, fed in order)."""
    params = configured_params(AnalyticsSettings())
    params_id = analytics_store.params_id(conn, params)
    state = SeriesState.new(params, annualization_factor("1d"))
    rows = []
    for bar in known.bars["AAPL"]:
        values = state.feed(bar.ts, bar.close, bar.split_basis)
        known.indicators[bar.ts] = tuple(values)
        rows.append(("AAPL", "1d", bar.ts, *values, params_id, state.split_basis))
    with conn.cursor() as cur:
        cur.executemany(INSERT_INDICATORS, rows)


def _news(conn: psycopg.Connection, path: Path, known: KnownData) -> None:
    for item in json.loads(path.read_text()):
        published = datetime.fromtimestamp(item["datetime"], UTC)
        score = sentiment(item["headline"], item.get("summary"))
        article_id = str(item["id"])
        conn.execute(
            INSERT_ARTICLE,
            (
                article_id, published, item["headline"], item.get("summary"), item.get("source"),
                item.get("url"), item.get("category"), score,
            ),
        )  # fmt: skip
        conn.execute(INSERT_LINK, (article_id, "AAPL"))
        known.news.append((article_id, published, item["headline"], score))


def _gdp(conn: psycopg.Connection, path: Path, known: KnownData) -> None:
    """The recorded vintage (2024-12-19) plus a DERIVED earlier first estimate of 2024Q3."""
    conn.execute(INSERT_SERIES, ("GDP", "Gross Domestic Product", "Billions of Dollars", "Q"))
    for item in json.loads(path.read_text())["observations"]:
        obs = date.fromisoformat(item["date"])
        realtime = date.fromisoformat(item["realtime_start"])
        value = None if item["value"] == "." else float(item["value"])
        vintages = known.gdp.setdefault(obs, [])
        if obs in GDP_FIRST_ESTIMATES:
            first_day, first_value = GDP_FIRST_ESTIMATES[obs]
            conn.execute(INSERT_OBSERVATION, ("GDP", obs, first_day, first_value))
            vintages.append((first_day, first_value))
        conn.execute(INSERT_OBSERVATION, ("GDP", obs, realtime, value))
        vintages.append((realtime, value))


def _forecasts(conn: psycopg.Connection, known: KnownData) -> None:
    """DERIVED: two ARIMA/naive origins on AAPL's last bars; the older one scored on its bars."""
    bars = known.bars["AAPL"]
    older, newest = bars[-4], bars[-1]
    known.newest_origin = newest.ts
    scale = 1.5
    for origin in (older, newest):
        conn.execute(INSERT_ORIGIN, ("AAPL", origin.ts, 500, scale))
        for model, drift in (("arima", 0.2), ("naive", 0.0)):
            for step in (1, 2, 3):
                median = origin.close + drift * step
                width = 2.0 * step
                row = (
                    "AAPL", origin.ts, step, origin.ts + timedelta(days=step), model, median,
                    median + 0.1, median - width, median + width, median - 2 * width,
                    median + 2 * width,
                )  # fmt: skip
                conn.execute(INSERT_FORECAST, row)
                known.forecasts.append(row)
    for step in (1, 2, 3):
        target = bars[-4 + step]
        for model, drift in (("arima", 0.2), ("naive", 0.0)):
            median = older.close + drift * step
            error = abs(target.close - median)
            inside80 = error <= 2.0 * step
            inside95 = error <= 4.0 * step
            row = (
                "AAPL", older.ts, step, model, target.ts, target.close, error, error / scale,
                inside80, inside95,
            )  # fmt: skip
            conn.execute(INSERT_ERROR, row)
            known.errors.append(row)


def _alerts(conn: psycopg.Connection, known: KnownData) -> None:
    """DERIVED: an RSI alert that fired and resolved, and two that fire now."""
    bars = known.bars["AAPL"]
    events = [
        ("a" * 32, "rsi_overbought", "warning", "AAPL", "firing", 71.0, 70.0, bars[-30].ts, None),
        ("a" * 32, "rsi_overbought", "warning", "AAPL", "resolved", 65.0, 70.0, bars[-25].ts, 0),
        ("b" * 32, "price_drop", "critical", "AAPL", "firing", -5.6, -5.0, bars[-10].ts, None),
        ("c" * 32, "volume_spike", "info", "MSFT", "firing", 3.2, 3.0, bars[-2].ts, None),
    ]
    ids: list[int] = []
    for fingerprint, rule, severity, symbol, state, value, threshold, bar_ts, prev in events:
        prev_id = ids[prev] if prev is not None else None
        message = f"{rule} {state} on {symbol}"
        (new_id,) = conn.execute(
            INSERT_ALERT,
            (
                fingerprint,
                rule,
                severity,
                symbol,
                state,
                value,
                threshold,
                message,
                bar_ts,
                prev_id,
            ),
        ).fetchone()  # type: ignore[misc]
        ids.append(new_id)
        known.alerts.append(
            {"id": new_id, "rule": rule, "symbol": symbol, "state": state, "bar_ts": bar_ts,
             "value": value, "prev": prev_id}
        )  # fmt: skip
