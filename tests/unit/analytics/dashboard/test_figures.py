"""The dashboard's pure parts: figures from rows, the page's payload, request checks, health."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from analytics.dashboard.figures import figures
from analytics.dashboard.queries import ActiveAlert, BarRow, SeriesData
from analytics.dashboard.status import interpret, series_slas
from analytics.dashboard.view import BadRequest, checked_series, series_payload
from analytics.series_marks import AlertMark, ForecastStep, SplitMark
from pipeline.freshness import Mode
from shared.settings import FreshnessSettings

START = datetime(2021, 7, 1, tzinfo=UTC)


def bars(count: int, warmup: int = 3) -> list[BarRow]:
    rows = []
    for i in range(count):
        close = 100.0 + i
        warm = i >= warmup
        rows.append(
            BarRow(
                START + timedelta(days=i),
                close,
                close + 1,
                close - 1,
                close,
                1000 + i,
                close - 2 if warm else None,
                close if warm else None,
                close + 2 if warm else None,
                55.0 if warm else None,
                0.5 if warm else None,
                0.4 if warm else None,
                0.1 if warm else None,
            )
        )
    return rows


def series(count: int = 10) -> SeriesData:
    rows = bars(count)
    last = rows[-1].ts
    forecast = [
        ForecastStep(
            last, k, last + timedelta(days=k), 110.0 + k, 108.0, 112.0 + k, 106.0, 114.0 + k
        )
        for k in (1, 2, 3)
    ]
    alerts = [
        AlertMark(rows[4].ts, "rsi_overbought", "warning", "firing", "RSI 72 > 70"),
        AlertMark(rows[6].ts, "rsi_overbought", "warning", "resolved", "RSI 60 < 65"),
        # Before the drawn window: no bar to put it on, so no marker.
        AlertMark(START - timedelta(days=30), "rsi_overbought", "warning", "firing", "old"),
    ]
    splits = [SplitMark(rows[5].ts, 4.0)]
    return SeriesData("NVDA", "1d", rows, forecast, alerts, splits)


def by_name(figure: dict) -> dict[str, dict]:
    return {trace["name"]: trace for trace in figure["data"]}


def test_each_panel_has_its_series_with_one_point_per_bar() -> None:
    panels = figures(series(10))
    price = by_name(panels["price"])
    for name in ("close", "bb_lower", "bb_middle", "bb_upper"):
        assert len(price[name]["x"]) == len(price[name]["y"]) == 10, name
    assert price["close"]["y"] == [100.0 + i for i in range(10)]
    # Warm-up rows are gaps (null), never zeros.
    assert price["bb_upper"]["y"][:3] == [None, None, None]
    assert list(by_name(panels["rsi"])) == ["rsi"]
    assert set(by_name(panels["macd"])) == {"macd", "macd_signal", "macd_hist"}
    assert all(len(t["x"]) == 10 for t in panels["macd"]["data"] + panels["rsi"]["data"])


def test_the_cone_opens_at_the_last_close_and_spans_every_step() -> None:
    price = by_name(figures(series(10))["price"])
    median = price["forecast median"]
    assert median["x"][0] == START.replace(day=10).isoformat()
    assert median["y"] == [109.0, 111.0, 112.0, 113.0]
    assert price["forecast 95%"]["y"] == [109.0, 115.0, 116.0, 117.0]
    assert price["forecast 95% low"]["y"] == [109.0, 106.0, 106.0, 106.0]
    assert price["forecast 80%"]["fill"] == "tonexty"


def test_alert_and_split_markers_sit_on_their_bars() -> None:
    price = figures(series(10))["price"]
    traces = by_name(price)
    assert traces["alerts firing"]["x"] == [(START + timedelta(days=4)).isoformat()]
    assert traces["alerts firing"]["y"] == [104.0]
    assert traces["alerts resolved"]["y"] == [106.0]
    assert traces["splits"]["text"] == ["split 4:1"]
    assert traces["splits"]["y"] == [105.0]
    assert [shape["x0"] for shape in price["layout"]["shapes"]] == [
        (START + timedelta(days=5)).isoformat()
    ]


def test_an_empty_series_draws_empty_panels() -> None:
    panels = figures(SeriesData("NVDA", "1d", [], [], [], []))
    assert all(len(t["x"]) == 0 for p in panels.values() for t in p["data"])


def test_the_payload_is_json_and_names_the_newest_bar() -> None:
    data = series(10)
    health = [interpret("consumer.storage", b'{"status": "red", "reasons": ["lag"], "notes": []}')]
    active = [ActiveAlert("NVDA", "1d", "rsi_overbought", "warning", "RSI 72", START)]
    payload = series_payload(data, active, [], health, START + timedelta(days=20))
    again = json.loads(json.dumps(payload))
    assert again["newest"] == (START + timedelta(days=9)).isoformat()
    assert again["bar_count"] == 10
    assert again["health"] == [
        {"name": "consumer.storage", "status": "red", "reasons": ["lag"], "notes": []}
    ]
    assert again["active_alerts"][0]["rule"] == "rsi_overbought"


@pytest.mark.parametrize(
    ("symbol", "interval"), [("nvda", "1d"), ("BRK-B", "1h"), ("^GSPC", "5m"), ("EURUSD=X", "1m")]
)
def test_series_names_as_yahoo_spells_them_are_accepted(symbol: str, interval: str) -> None:
    assert checked_series(symbol, interval) == (symbol.upper(), interval)


@pytest.mark.parametrize(
    ("symbol", "interval", "reason"),
    [
        ("NVDA'; DROP TABLE x", "1d", "symbol"),
        ("", "1d", "symbol"),
        ("A" * 21, "1d", "symbol"),
        ("NVDA", "2d", "interval"),
        ("NVDA", None, "interval"),
    ],
)
def test_anything_else_is_refused_with_a_reason(
    symbol: str, interval: str | None, reason: str
) -> None:
    with pytest.raises(BadRequest, match=reason):
        checked_series(symbol, interval)


def test_health_answers_are_read_whatever_their_shape() -> None:
    ok = interpret("a", b'{"status": "ok", "reasons": [], "notes": ["disabled: no key"]}')
    assert (ok.status, ok.notes) == ("ok", ("disabled: no key",))
    assert interpret("a", None, "connection refused").status == "down"
    assert interpret("a", b"<html>").status == "down"


def test_a_daily_series_is_judged_on_session_closes() -> None:
    daily = series_slas("1d", FreshnessSettings(), forecast_every=5)
    assert [(s.domain, s.mode, s.daily) for s in daily] == [
        ("bars", Mode.SESSIONS, True),
        ("indicators", Mode.SESSIONS, True),
        ("forecasts", Mode.SESSIONS, True),
    ]
    assert daily[2].allowed_sessions == 5
    intraday = series_slas("5m", FreshnessSettings(), forecast_every=5)
    assert {s.mode for s in intraday} == {Mode.MARKET_TIME}
