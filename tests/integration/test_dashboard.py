"""analytics.dashboard end to end: recorded NVDA bars through producer.market (replay), Kafka,
storage, analytics and the forecaster into PostgreSQL; the dashboard process serves them to
Debian's headless Chromium, which sees the panels, the newest bar, and a new bar arrive."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from analytics.forecaster.service import SERVICE as FORECASTER
from analytics.forecaster.service import run as run_forecaster
from producer.market.service import poll_once
from shared.kafka import Topics
from shared.schemas import Bar, event_id
from shared.services import ANALYTICS_DASHBOARD, all_services
from shared.settings import (
    ConsumerSettings,
    DataSource,
    ForecastSettings,
    MarketSettings,
    PostgresSettings,
    Settings,
    SourceSettings,
)
from tests.conftest import REPO_ROOT
from tests.integration.analytics_run import analytics_running, wait_analyzed
from tests.integration.bar_stream import drained, publish_bars
from tests.integration.browser import BrowserError, HeadlessChromium
from tests.integration.processes import ServiceProcess, free_port, free_port_range, wait_for
from tests.integration.storage_thread import (
    in_thread,
    storage_running,
    wait_stored,
)

SYMBOL = "NVDA"  # 252 recorded sessions with a 4:1 split (2021-07-20)
HORIZON = 5
# The next session after the recording's last (Friday 2022-01-28).
NEW_BAR_TS = datetime(2022, 1, 31, tzinfo=UTC)
# Every trace's name and length in a panel, read from the div plotly.js drew into.
TRACES = "Object.fromEntries(el.data.map(t => [t.name, t.x.length]))"


def panel_traces(browser: HeadlessChromium, panel: str) -> dict[str, int]:
    return browser.evaluate(
        f"(() => {{ const el = document.getElementById('panel-{panel}'); return {TRACES}; }})()"
    )


@pytest.fixture
def pipeline_settings(
    settings_factory: Callable[..., Settings], recordings: Path, group: str
) -> Settings:
    # Origins only at the last few sessions: a handful of fits, not the whole year's.
    return settings_factory(
        source=SourceSettings(data_source=DataSource.REPLAY, replay_dir=recordings),
        market=MarketSettings(symbols=[SYMBOL], interval="1d", requests_per_minute=600),
        # Groups of this test's own (a Kafka group is broker-wide).
        consumer=ConsumerSettings(
            poll_timeout_s=0.2,
            group_storage=f"{group}-storage",
            group_analytics=f"{group}-analytics",
            group_forecaster=f"{group}-forecaster",
        ),
        forecast=ForecastSettings(
            horizon=HORIZON, every=5, min_bars=240, window=240, workers=0, time_budget_s=5
        ),
    )


def newest_stored(settings: Settings) -> tuple[datetime, float, float, int, int, int]:
    """The newest bar's time, close and split basis; the bars, splits and alert events stored."""
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        newest, last_close, basis = conn.execute(
            "SELECT ts, close, split_basis FROM latest_bars WHERE symbol = %s AND interval = '1d'",
            (SYMBOL,),
        ).fetchone()
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM price_bars WHERE symbol = %(s)s),"
            " (SELECT count(*) FROM corporate_actions WHERE symbol = %(s)s AND kind = 'split'),"
            " (SELECT count(*) FROM alert_events WHERE symbol = %(s)s)",
            {"s": SYMBOL},
        ).fetchone()
    return (newest, last_close, basis, *counts)


def dashboard_process(service_env: dict[str, str], logs: Path) -> ServiceProcess:
    """The dashboard as `python -m analytics.dashboard`, its health on HEALTH_BASE_PORT + its
    offset (so the health panel asks every service's own port: the others are not running)."""
    process = ServiceProcess(
        ANALYTICS_DASHBOARD.module,
        service_env,
        logs,
        DASHBOARD_PORT=str(free_port()),
        DASHBOARD_REFRESH_S="0.5",
        MARKET_SYMBOLS=SYMBOL,
    )
    base = free_port_range(span=99)
    del process.env["HEALTH_PORT"]
    process.env["HEALTH_BASE_PORT"] = str(base)
    process.port = base + ANALYTICS_DASHBOARD.port_offset
    return process


def test_the_dashboard_shows_the_stored_series_and_follows_a_new_bar(
    pipeline_settings: Settings,
    topics: Topics,
    service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    settings = pipeline_settings
    report = poll_once(settings)
    assert report.published > 240 and not report.failed
    with (
        storage_running(settings),
        analytics_running(settings),
        in_thread(FORECASTER, run_forecaster, settings),
    ):
        wait_stored(settings, topics.market_bars, topics.market_actions)
        wait_analyzed(settings)
        wait_for(
            lambda: drained(
                settings.postgres,
                settings.kafka,
                settings.consumer.group_forecaster,
                topics.market_bars,
            ),
            120,
            "the forecaster to drain market.bars",
        )
        newest, last_close, basis, bar_count, splits, alerts = newest_stored(settings)
        assert (bar_count, splits) == (252, 1) and alerts > 0

        dashboard = dashboard_process(service_env, tmp_path).start()
        try:
            url = f"http://127.0.0.1:{dashboard.env['DASHBOARD_PORT']}"
            with HeadlessChromium() as browser:
                browser.goto(f"{url}/?symbol={SYMBOL}&interval=1d")
                browser.wait_for(
                    "document.querySelectorAll('.js-plotly-plot').length === 3"
                    " && document.body.dataset.newest",
                    60,
                    "the three charts",
                )
                # plotly.js came from the dashboard itself, not from a CDN.
                scripts = browser.evaluate("[...document.scripts].map(s => s.src).filter(s => s)")
                assert all(src.startswith(url) for src in scripts), scripts
                assert browser.evaluate("typeof Plotly.react") == "function"

                assert browser.evaluate("document.body.dataset.newest") == newest.isoformat()
                assert browser.evaluate("document.getElementById('newest-bar').textContent") == (
                    newest.isoformat()
                )
                shown = settings.dashboard.bars  # the newest DASHBOARD_BARS of 252
                price = panel_traces(browser, "price")
                assert {k: price[k] for k in ("close", "bb_lower", "bb_upper", "bb_middle")} == {
                    k: shown for k in ("close", "bb_lower", "bb_upper", "bb_middle")
                }
                # The cone opens at the last close and covers every step of the newest origin.
                assert price["forecast 95%"] == price["forecast median"] == HORIZON + 1
                assert price["splits"] == 1  # 2021-07-20 is inside the newest 250 sessions
                assert price["alerts firing"] + price["alerts resolved"] > 0
                assert panel_traces(browser, "rsi") == {"rsi": shown}
                assert panel_traces(browser, "macd") == {
                    "macd_hist": shown,
                    "macd": shown,
                    "macd_signal": shown,
                }
                split_text = browser.evaluate(
                    "document.getElementById('panel-price').data"
                    ".find(t => t.name === 'splits').text[0]"
                )
                assert split_text == "split 4:1"

                health = dict(
                    browser.evaluate(
                        "[...document.querySelectorAll('#health tbody tr')]"
                        ".map(r => [r.cells[0].textContent, r.cells[1].textContent])"
                    )
                )
                assert set(health) == {s.name for s in all_services()}
                assert health[ANALYTICS_DASHBOARD.name] == "ok"
                assert health["consumer.storage"] == "down"  # runs in this test, not on a port
                freshness = browser.evaluate(
                    "[...document.querySelectorAll('#freshness tbody tr')]"
                    ".map(r => r.cells[0].textContent)"
                )
                assert freshness == ["bars", "indicators", "forecasts"]

                # One more bar through Kafka, storage and analytics: the page follows it. Fetched
                # after the split, like the recorded ones, it carries their basis.
                close = round(last_close * 1.02, 2)
                publish_bars(
                    settings.kafka,
                    topics.market_bars,
                    [
                        Bar(
                            event_id=event_id("replay", SYMBOL, "1d", NEW_BAR_TS),
                            source="replay",
                            symbol=SYMBOL,
                            interval="1d",
                            ts=NEW_BAR_TS,
                            open=last_close,
                            high=close,
                            low=last_close,
                            close=close,
                            adj_close=close,
                            volume=40_000_000,
                            split_basis=basis,
                            fetched_at=datetime(2022, 2, 1, tzinfo=UTC),
                        )
                    ],
                )
                wait_stored(settings, topics.market_bars)
                wait_analyzed(settings)
                try:
                    browser.wait_for(
                        f"document.body.dataset.newest === {json.dumps(NEW_BAR_TS.isoformat())}",
                        30,
                        "the page to show the new bar",
                    )
                except BrowserError as exc:
                    page = browser.evaluate(
                        "[document.body.dataset.newest, el('status').textContent]"
                    )
                    with psycopg.connect(settings.postgres.conninfo()) as conn:
                        db = conn.execute(
                            "SELECT (SELECT max(ts) FROM price_bars),"
                            " (SELECT array_agg(reason) FROM dead_letters),"
                            " (SELECT count(*) FROM late_bars)"
                        ).fetchone()
                    raise AssertionError(
                        f"{exc}; page: {page}; db: {db}; {dashboard.log()[-2000:]}"
                    ) from None
                last = browser.evaluate(
                    "(() => { const t = document.getElementById('panel-price').data"
                    ".find(t => t.name === 'close'); return [t.x.at(-1), t.y.at(-1)]; })()"
                )
                assert last == [NEW_BAR_TS.isoformat(), close]
                # Its indicators too (analytics has written them: wait_analyzed above).
                wait_for(
                    lambda: browser.evaluate(
                        "document.getElementById('panel-rsi').data[0].y.at(-1) !== null"
                    ),
                    30,
                    "the new bar's RSI on the page",
                )
                shot = browser.screenshot(tmp_path / "dashboard.png")
                assert shot.stat().st_size > 10_000
                print(f"dashboard screenshot: {shot}")
            # A request for something that is not a series is refused with a reason, counted.
            bad = f"{url}/api/view?symbol=x;drop&interval=1d"
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(bad, timeout=5)  # noqa: S310 (our own http URL)
            assert refused.value.code == 400
            assert "symbol" in json.loads(refused.value.read())["error"]
            assert dashboard.metrics()["dashboard_requests_rejected_total"] == 1
            # It read as the read-only role (DASHBOARD_READ_AS=reader, the default).
            with psycopg.connect(settings.postgres.conninfo()) as conn:
                logins = {
                    user
                    for (user,) in conn.execute(
                        "SELECT usename FROM pg_stat_activity WHERE datname = %s"
                        " AND application_name = 'market-pipeline' AND pid <> pg_backend_pid()",
                        (settings.postgres.dbname,),
                    )
                }
            assert "pipeline_reader" in logins, logins
            status, body = dashboard.healthz()
            assert (status, body["status"]) == (200, "ok"), body
        finally:
            assert dashboard.stop() == 0, dashboard.log()


def test_a_taken_port_stops_the_dashboard_with_one_line(
    pg_settings: PostgresSettings, service_env: dict[str, str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", ANALYTICS_DASHBOARD.module],
            cwd=REPO_ROOT,
            env={**service_env, "DASHBOARD_PORT": str(port), "HEALTH_PORT": "0"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{ANALYTICS_DASHBOARD.name}: dashboard port 127.0.0.1:{port}")
    assert "DASHBOARD_PORT" in last


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:  # noqa: S310 (our own http URL)
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_database_that_stops_answering_is_a_503_and_red_health_not_a_crash(
    pg_settings: PostgresSettings, service_env: dict[str, str], tmp_path: Path
) -> None:
    # A short connect timeout: a request gives up on the pool after it (5 s by default).
    dashboard = ServiceProcess(
        ANALYTICS_DASHBOARD.module,
        service_env,
        tmp_path,
        DASHBOARD_PORT=str(free_port()),
        POSTGRES_CONNECT_TIMEOUT_S="1",
    ).start()
    try:
        url = f"http://127.0.0.1:{dashboard.env['DASHBOARD_PORT']}"
        wait_for(lambda: "serving http" in dashboard.log(), 30, "the dashboard's web server")
        assert get_json(f"{url}/api/series") == (200, {"refresh_s": 5.0, "series": []})
        # The database goes away under it (its own test database: nothing shared is touched).
        with psycopg.connect(
            PostgresSettings().conninfo(dbname="postgres"), autocommit=True
        ) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(pg_settings.dbname))
            )
        status, body = get_json(f"{url}/api/view?symbol=NVDA&interval=1d")
        assert status == 503 and body["error"].startswith("PostgreSQL did not answer"), body
        health_status, health = dashboard.healthz()
        assert health_status == 503 and health["reasons"][0].startswith("PostgreSQL"), health
        assert dashboard.running
    finally:
        assert dashboard.stop() == 0, dashboard.log()
