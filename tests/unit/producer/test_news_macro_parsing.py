"""FRED client pagination, FRED and Finnhub parsing, and the API gate, without the network."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from producer.api_gate import ApiGate
from producer.fred_client import FredClient
from producer.macro.parsing import parse_observations, parse_series
from producer.news.parsing import article_id, parse_news, sentiment
from producer.poll_loop import RateLimiter
from shared.health import Health

NOW = datetime(2026, 11, 24, tzinfo=UTC)


class _Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self.status_code = 200
        self._body = body
        self.text = json.dumps(body)

    def json(self) -> dict[str, Any]:
        return self._body


class _PagedSession:
    """Serves the recorded first GNPCA page, then DERIVED pages up to the recorded `count`."""

    def __init__(self, first: dict[str, Any]) -> None:
        self.first = first
        self.offsets: list[int] = []

    def get(self, url: str, params: dict[str, Any], timeout: float) -> _Response:
        offset = int(params["offset"])
        self.offsets.append(offset)
        if offset == 0:
            return _Response(self.first)
        count, limit = self.first["count"], self.first["limit"]
        page = [
            {**self.first["observations"][0], "date": f"{1929 + i}-01-01"}
            for i in range(offset, min(count, offset + limit))
        ]
        return _Response({**self.first, "offset": offset, "observations": page})


def test_fred_client_pages_until_count(recordings: Path) -> None:
    first = json.loads(
        (
            recordings / "fred/series_observations_GNPCA_limit10_paginated_rt2020-05-20.json"
        ).read_text()
    )
    session = _PagedSession(first)
    client = FredClient(
        session, "k", limiter=RateLimiter(60_000), stop=threading.Event(), timeout_s=1
    )
    observations, _ = client.observations("GNPCA", limit=first["limit"])
    assert len(observations) == first["count"] == 91
    assert session.offsets == list(range(0, 91, 10))


def test_fred_missing_is_null_and_a_bad_value_is_a_dead_letter(recordings: Path) -> None:
    body = json.loads((recordings / "fred/series_observations_GDP_rt2024-12-19.json").read_text())
    raw = body["observations"][:6]
    raw[5] = {**raw[5], "value": "n/a"}
    parsed = parse_observations("GDP", raw, None, NOW)
    assert [o.obs_date for o in parsed.observations[:4]] == [
        date(1946, m, 1) for m in (1, 4, 7, 10)
    ]
    assert all(o.value is None for o in parsed.observations[:4])
    assert parsed.observations[4].value == float(raw[4]["value"])
    assert len(parsed.dead_letters) == 1 and "n/a" in parsed.dead_letters[0].reason


def test_fred_series_last_updated_has_its_offset(recordings: Path) -> None:
    body = json.loads((recordings / "fred/series_GDP_rt2024-12-19.json").read_text())
    series = parse_series(body["seriess"][0])
    assert series.last_updated == datetime(2024, 12, 19, 13, 55, 1, tzinfo=UTC)
    assert series.frequency == "Quarterly"


def test_article_id_and_sentiment() -> None:
    assert article_id({"id": 7, "url": "u"}) == "7"
    assert article_id({"id": 0, "url": "https://x"}).startswith("url:")
    assert -1 <= sentiment("Apple soars on record profits", "great news") <= 1
    assert sentiment("Apple soars on record profits, great news", None) > 0
    parsed = parse_news("AAPL", [{"headline": "no time", "id": 1}], NOW)
    assert not parsed.articles and "datetime is missing" in parsed.dead_letters[0].reason


@pytest.mark.parametrize(("live", "key", "open_"), [(True, False, False), (False, False, True)])
def test_live_without_a_key_is_disabled_green_with_a_note(
    live: bool, key: bool, open_: bool
) -> None:
    health = Health("producer.news")
    gate = ApiGate("Finnhub", health, key_setting="FINNHUB_API_KEY", key_present=key, live=live)
    assert gate.open is open_
    assert health.snapshot() == (True, [])  # disabled is not red
    assert health.notes() == ([] if open_ else ["disabled: no FINNHUB_API_KEY"])


def test_an_optional_part_says_what_is_disabled() -> None:
    health = Health("producer.market")
    ApiGate(
        "Finnhub",
        health,
        key_setting="FINNHUB_API_KEY",
        key_present=False,
        live=True,
        feature="Finnhub profile2",
    )
    assert health.snapshot() == (True, [])
    assert health.notes() == ["Finnhub profile2 disabled: no FINNHUB_API_KEY"]


def test_a_refused_key_is_red() -> None:
    health = Health("producer.macro")
    gate = ApiGate("FRED", health, key_setting="FRED_API_KEY", key_present=True, live=True)
    assert gate.open
    gate.close("FRED refused the API key, not calling FRED again: HTTP 401")
    assert not gate.open
    assert health.snapshot() == (
        False,
        ["FRED refused the API key, not calling FRED again: HTTP 401"],
    )
    assert health.notes() == []


def test_market_without_a_finnhub_key_is_green_with_a_note() -> None:
    # producer.market live without FINNHUB_API_KEY: Yahoo bars flow, only profile2 is disabled.
    import threading

    from producer.market.service import market_loop
    from shared.settings import DataSource, load_settings

    settings = load_settings()
    assert settings.source.data_source is DataSource.LIVE and settings.api.finnhub_api_key is None
    health = Health("producer.market")
    poller = market_loop(
        settings,
        producer=None,  # type: ignore[arg-type]  (nothing is published or stored here)
        pool=None,  # type: ignore[arg-type]
        health=health,
        stop=threading.Event(),
    )
    assert not poller.plan.finnhub_gate.open
    assert health.snapshot() == (True, [])
    assert health.notes() == ["Finnhub profile2 disabled: no FINNHUB_API_KEY"]
